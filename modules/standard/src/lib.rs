//! Placeholder: names every standard module crate.
