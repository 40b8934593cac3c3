//! Ownership of loaded children. A module's provision loads its children through its
//! [`Context`](super::Context); each child's [`Loaded`](super::Loaded) is linked to the
//! parent's scope. However the parent stores its children (fields, vectors, `Arc`s), when
//! they are dropped they are not cleaned up on the spot but handed back to the scope, and the
//! scope cleans them up in reverse load order once the parent itself is gone: after the
//! parent's own cleanup hook, or right away when the parent's provision failed (Caddy's
//! context does the same with the modules it loaded).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::guard;
use crate::module::Module;

/// A loaded module on its way out: its hook still to run (unless it ran), then its own
/// children.
pub(super) struct Retiring<I: ?Sized + Module> {
    pub id: &'static str,
    pub module: Box<I>,
    pub cleaned_up: bool,
    pub children: Scope,
}

/// Type-erased [`Retiring`], so one scope holds children of any interface.
pub(super) trait Retire: Send {
    fn retire(self: Box<Self>);
}

impl<I: ?Sized + Module> Retire for Retiring<I> {
    fn retire(self: Box<Self>) {
        let Retiring {
            id,
            mut module,
            cleaned_up,
            children,
        } = *self;
        if !cleaned_up && let Err(err) = guard::call(id, "cleanup", || module.cleanup()) {
            // Nobody is left to return it to; the guard has counted it in the metrics.
            tracing::warn!(module = id, error = %err, "cleanup failed");
        }
        // The module first: dropping it hands its children to `children`, which then
        // retires them, newest first.
        drop(module);
        children.close();
    }
}

#[derive(Default)]
struct State {
    closed: bool,
    loaded: u64,
    retiring: Vec<(u64, Box<dyn Retire>)>,
}

/// The children one module loaded. Cheap to clone: clones share one list.
#[derive(Clone, Default)]
pub(super) struct Scope(Arc<Mutex<State>>);

impl Scope {
    fn state(&self) -> MutexGuard<'_, State> {
        // Module code never runs under this lock, so a poisoned lock has consistent data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place in this scope for a child just loaded; its number orders the cleanup.
    pub fn adopt(&self) -> Membership {
        let mut state = self.state();
        state.loaded += 1;
        Membership {
            scope: self.clone(),
            order: state.loaded,
        }
    }

    /// Retires every child handed back so far, newest first, and every later one as soon
    /// as it is handed back.
    pub fn close(&self) {
        let mut retiring = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.retiring)
        };
        retiring.sort_by_key(|(order, _)| std::cmp::Reverse(*order));
        for (_, child) in retiring {
            child.retire();
        }
    }
}

/// A child's link to the scope of the module that loaded it.
pub(super) struct Membership {
    scope: Scope,
    order: u64,
}

impl Membership {
    /// Hands a dropped child back to its scope, or retires it at once if the scope has
    /// already closed (e.g. the child outlived its parent in another thread's `Arc`).
    pub fn hand_back(self, child: Box<dyn Retire>) {
        let child = {
            let mut state = self.scope.state();
            if state.closed {
                Some(child)
            } else {
                state.retiring.push((self.order, child));
                None
            }
        };
        if let Some(child) = child {
            child.retire();
        }
    }
}
