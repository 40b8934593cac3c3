//! file_server: index files, content types, ETag and Last-Modified revalidation, ranges,
//! and containment (no request ever gets a file from outside the root).

use std::fs;
use std::path::Path;

use crate::support::{Host, get, get_with, raw, raw_status};

const SECRET: &str = "TOP-SECRET-OUTSIDE-ROOT";

/// A folder holding `site/` (the root) and, beside it, files the server must never serve;
/// `site/` has symlinks pointing out of it.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    fs::write(root.join("style.css"), "body { color: red }").unwrap();
    fs::write(root.join("docs/index.htm"), "docs index").unwrap();
    fs::write(root.join("alphabet.txt"), "abcdefghijklmnopqrstuvwxyz").unwrap();
    fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    fs::create_dir_all(dir.path().join("private")).unwrap();
    fs::write(dir.path().join("private/secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link-out.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("private"), root.join("linkdir")).unwrap();
    // A symlink that stays inside the root is fine.
    std::os::unix::fs::symlink(root.join("style.css"), root.join("link-in.css")).unwrap();
    dir
}

fn start(root: &Path) -> Host {
    Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.files]
        listen = ["{{addr}}"]
        access_log = false
        [[apps.http.servers.files.routes]]
        handle = [{{ handler = "file_server", root = {root:?}, index_names = ["index.html", "index.htm"] }}]
        "#,
        root = root.join("site").to_str().unwrap()
    ))
}

#[test]
fn serves_index_files_with_content_types() {
    let dir = site();
    let host = start(dir.path());
    let home = get(&host.url("/"));
    assert_eq!(home.status, 200);
    assert_eq!(home.body, "<h1>home</h1>");
    assert!(home.header("content-type").starts_with("text/html"));

    let css = get(&host.url("/style.css"));
    assert_eq!(css.body, "body { color: red }");
    assert!(css.header("content-type").starts_with("text/css"));

    // The second index name is used when the first is missing.
    assert_eq!(get(&host.url("/docs/")).body, "docs index");
    // A folder without the slash is redirected to it.
    let redirect = get(&host.url("/docs"));
    assert!(redirect.status.is_redirection(), "{}", redirect.status);
    assert_eq!(redirect.header("location"), "/docs/");
    // A folder with no index file, and a missing file.
    assert_eq!(get(&host.url("/empty/")).status, 404);
    assert_eq!(get(&host.url("/missing.txt")).status, 404);
    // Symlinks inside the root are followed.
    assert_eq!(get(&host.url("/link-in.css")).body, "body { color: red }");
}

#[test]
fn revalidates_with_etag_and_last_modified() {
    let dir = site();
    let host = start(dir.path());
    let first = get(&host.url("/style.css"));
    let etag = first.header("etag").to_owned();
    let last_modified = first.header("last-modified").to_owned();

    let by_etag = get_with(&host.url("/style.css"), &[("if-none-match", &etag)]);
    assert_eq!(by_etag.status, 304);
    assert_eq!(by_etag.body, "");
    let by_date = get_with(
        &host.url("/style.css"),
        &[("if-modified-since", &last_modified)],
    );
    assert_eq!(by_date.status, 304);
    // A stale validator gets the file.
    let stale = get_with(&host.url("/style.css"), &[("if-none-match", "\"other\"")]);
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, "body { color: red }");
}

#[test]
fn serves_byte_ranges() {
    let dir = site();
    let host = start(dir.path());
    let part = get_with(&host.url("/alphabet.txt"), &[("range", "bytes=2-5")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, "cdef");
    assert_eq!(part.header("content-range"), "bytes 2-5/26");
    let tail = get_with(&host.url("/alphabet.txt"), &[("range", "bytes=-3")]);
    assert_eq!((tail.status.as_u16(), tail.body.as_str()), (206, "xyz"));
    let beyond = get_with(&host.url("/alphabet.txt"), &[("range", "bytes=100-200")]);
    assert_eq!(beyond.status, 416);
}

#[test]
fn never_serves_a_file_outside_the_root() {
    let dir = site();
    let host = start(dir.path());
    // Sent byte for byte, so no client library can clean the paths up first.
    for target in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/link-out.txt",
        "/linkdir/secret.txt",
        "/linkdir/",
        "/%2e%2e/private/",
    ] {
        let answer = raw(host.addr, &format!("GET {target} HTTP/1.1"));
        let status = raw_status(&answer);
        assert!(
            status == 403 || status == 404 || status == 400,
            "{target}: answered {status}\n{answer}"
        );
        assert!(
            !answer.contains(SECRET),
            "{target} leaked the file:\n{answer}"
        );
    }
    // The server is still fine afterwards.
    assert_eq!(get(&host.url("/style.css")).status, 200);
}

#[test]
fn a_fifo_in_the_root_is_not_served_and_pins_nothing() {
    let dir = site();
    let fifo = dir.path().join("site/pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let host = start(dir.path());
    // worker_threads = 1: if a request pinned the runtime opening the FIFO, the next
    // requests would hang too.
    for _ in 0..3 {
        let answer = raw(host.addr, "GET /pipe HTTP/1.1");
        assert_eq!(raw_status(&answer), 404, "{answer}");
    }
    assert_eq!(get(&host.url("/style.css")).status, 200);
}

#[test]
fn odd_ranges_are_ignored_and_if_range_is_honoured() {
    let dir = site();
    let host = start(dir.path());
    let url = host.url("/alphabet.txt");
    let whole = "abcdefghijklmnopqrstuvwxyz";
    // Not a byte range this server answers with a piece: the whole file, not 416.
    for range in [
        "bytes=abc",
        "bytes=0-1,3-4",
        "bytes=-",
        "items=0-3",
        "bytes=5",
    ] {
        let answer = get_with(&url, &[("range", range)]);
        assert_eq!(
            (answer.status.as_u16(), answer.body.as_str()),
            (200, whole),
            "{range}"
        );
    }
    let first = get(&url);
    let etag = first.header("etag").to_owned();
    let last_modified = first.header("last-modified").to_owned();
    let with = |validator: &str| {
        let answer = get_with(&url, &[("range", "bytes=0-3"), ("if-range", validator)]);
        (answer.status.as_u16(), answer.body)
    };
    // The validator of the current file: the piece.
    assert_eq!(with(&etag), (206, "abcd".to_owned()));
    assert_eq!(with(&last_modified), (206, "abcd".to_owned()));
    // A stale one, or a weak one: the whole file.
    assert_eq!(with("\"stale\""), (200, whole.to_owned()));
    assert_eq!(with(&format!("W/{etag}")), (200, whole.to_owned()));
    assert_eq!(
        with("Thu, 01 Jan 1970 00:00:00 GMT"),
        (200, whole.to_owned())
    );
}
