//! `--with` and `--replace` values: parsing arbitrary text never panics, and whatever
//! parses prints (Display) back to a spec that parses to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xbuild_cli::spec::ModuleSpec;

fuzz_target!(|text: &str| {
    for parse in [ModuleSpec::parse, ModuleSpec::parse_replace] {
        if let Ok(spec) = parse(text) {
            let shown = spec.to_string();
            assert_eq!(
                parse(&shown),
                Ok(spec),
                "{text:?} is shown as {shown:?}, which parses differently"
            );
        }
    }
});
