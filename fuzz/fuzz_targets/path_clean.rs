//! `xbuild_http::path::clean` on arbitrary text: the cleaned path starts with `/`, cleaning
//! it again changes nothing, and no empty, `.` or `..` segment survives (a trailing slash
//! is kept). The same invariants as the proptest properties in `modules/http/src/path.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xbuild_http::path::clean;

fuzz_target!(|raw: &str| {
    let once = clean(raw);
    let twice = clean(&once);
    assert_eq!(twice, once, "cleaning {raw:?} is not idempotent");
    assert!(once.starts_with('/'), "{raw:?} -> {once:?}");
    let segments: Vec<&str> = once[1..].split('/').collect();
    let (last, inner) = segments.split_last().expect("split yields one item");
    for segment in inner {
        assert!(
            !matches!(*segment, "" | "." | ".."),
            "segment {segment:?} survives: {raw:?} -> {once:?}"
        );
    }
    assert!(
        !matches!(*last, "." | ".."),
        "last segment {last:?} survives: {raw:?} -> {once:?}"
    );
});
