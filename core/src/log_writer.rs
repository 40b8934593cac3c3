//! The host's one writer of log lines to stderr: the host's own log (through `tracing`) and
//! the lines apps format themselves (xbuild-http's access log) share it, so their lines
//! reach stderr in the order they were queued.
//!
//! A line is formatted on the thread that logs it and appended to a shared batch; a thread
//! of its own writes the batch, a batch per write, so a request's thread does not wait on
//! the terminal or pipe. When quiet, a line is written as soon as it is queued; under load,
//! lines gather for up to [`GATHER`] between writes. No line is dropped: past
//! [`MAX_PENDING`] queued bytes the logging thread writes the batch itself, so the log
//! cannot take unbounded memory when stderr is slow.
//!
//! (It replaces tracing-appender's non-blocking writer, which brought the `time` crate and
//! crossbeam's channel into every host for a job this module does in a hundred lines, and
//! the access log's own copy of this writer.)

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Past this many queued bytes, the logging thread writes the batch itself.
const MAX_PENDING: usize = 4 << 20;

/// How long the writer thread lets lines gather after a write.
const GATHER: Duration = Duration::from_millis(5);

/// Appends a line, written into the queue by `format`, for the writer thread to write.
/// `format` runs under the queue's lock: it should only format.
pub fn queue_with(format: impl FnOnce(&mut Vec<u8>)) {
    writer().queue_with(format);
}

/// Writes out every queued line now. The host calls it before it prints an error and when
/// it exits, so no line is lost or printed out of order with what follows.
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        writer.write_pending(&mut Vec::new());
    }
}

/// Starts the writer thread now rather than at the first line (the host calls it when it
/// sets up its log, so the thread is there before any module runs: selftest's leak audit
/// counts the threads a module's life leaves behind).
pub(crate) fn start() {
    writer();
}

/// `tracing-subscriber`'s writer for the host's log: each event, formatted whole by the
/// subscriber, is one queued line.
#[derive(Clone, Copy, Default)]
pub(crate) struct Stderr {
    /// The subscriber colours the line with escape sequences (stderr is a terminal), so
    /// only line breaks are escaped; otherwise every control character is.
    pub ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for Stderr {
    /// `bytes` is one whole event. Line breaks inside it (a TOML error's snippet, a text a
    /// client sent that reached an error message) are written as `\n` and `\r`: one event
    /// is one line, so a line-based reader (journald, grep) sees it whole, and no value
    /// can forge a line of its own. Without colours (a file, a pipe, journald), other
    /// control characters are written as `\u{1b}` and the like too, so no value can send
    /// escape sequences to whoever views the log later.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let ansi = self.ansi;
        queue_with(|out| one_line(out, bytes, ansi));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `event` into `out` with its inner line breaks escaped (the final newline kept), and,
/// unless the line is coloured (`ansi`), every other control character but tab.
fn one_line(out: &mut Vec<u8>, event: &[u8], ansi: bool) {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let escaped = |byte: u8| match byte {
        b'\n' | b'\r' => true,
        b'\t' => false,
        _ => !ansi && (byte < 0x20 || byte == 0x7f),
    };
    if !body.iter().any(|&b| escaped(b)) {
        out.extend_from_slice(event);
        return;
    }
    for &byte in body {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ if escaped(byte) => {
                let _ = write!(out, "\\u{{{byte:x}}}");
            }
            _ => out.push(byte),
        }
    }
    out.extend_from_slice(end);
}

struct Writer {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Held while a batch is taken and written, so batches reach stderr in order.
    writing: Mutex<()>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<u8>,
    /// The writer thread waits for lines (so a queued line must wake it).
    asleep: bool,
}

static WRITER: OnceLock<Writer> = OnceLock::new();

fn writer() -> &'static Writer {
    WRITER.get_or_init(|| {
        std::thread::Builder::new()
            .name("xbuild-log".to_owned())
            .spawn(|| writer().run())
            .expect("cannot start the log's writer thread");
        Writer {
            queue: Mutex::default(),
            wake: Condvar::new(),
            writing: Mutex::default(),
        }
    })
}

// A panic cannot leave a queue half-updated in a way that matters (lines are appended by
// formatting code that does not panic), so a poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Writer {
    fn queue_with(&self, format: impl FnOnce(&mut Vec<u8>)) {
        let mut queue = lock(&self.queue);
        format(&mut queue.pending);
        if queue.asleep {
            queue.asleep = false;
            self.wake.notify_one();
        } else if queue.pending.len() > MAX_PENDING {
            drop(queue);
            self.write_pending(&mut Vec::new());
        }
    }

    /// Takes what is queued (leaving `spare`'s buffer in its place) and writes it.
    fn write_pending(&self, spare: &mut Vec<u8>) {
        let _writing = lock(&self.writing);
        std::mem::swap(&mut lock(&self.queue).pending, spare);
        if !spare.is_empty() {
            // Nowhere to report a failed write to stderr; the lines are lost as they would
            // be with any logger.
            let _ = std::io::stderr().lock().write_all(spare);
            spare.clear();
        }
    }

    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            {
                let mut queue = lock(&self.queue);
                while queue.pending.is_empty() {
                    queue.asleep = true;
                    queue = self
                        .wake
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                queue.asleep = false;
            }
            self.write_pending(&mut spare);
            std::thread::sleep(GATHER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    fn written(event: &str) -> String {
        written_with(event, false)
    }

    fn written_with(event: &str, ansi: bool) -> String {
        let mut out = Vec::new();
        one_line(&mut out, event.as_bytes(), ansi);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_event_with_line_breaks_is_written_as_one_line() {
        assert_eq!(written("plain event\n"), "plain event\n");
        assert_eq!(
            written("reload failed error=TOML parse error\n  |\n1 | [a\n took_ms=0\n"),
            "reload failed error=TOML parse error\\n  |\\n1 | [a\\n took_ms=0\n"
        );
        assert_eq!(
            written("forged\r\n2026-01-01T00:00:00Z  INFO fake\n"),
            "forged\\r\\n2026-01-01T00:00:00Z  INFO fake\n"
        );
        assert_eq!(written("no newline at the end"), "no newline at the end");
    }

    #[test]
    fn escape_sequences_are_escaped_unless_the_line_is_coloured() {
        let event = "error=\x1b[2Jcleared\tscreen \x07\x7f\n";
        assert_eq!(
            written(event),
            "error=\\u{1b}[2Jcleared\tscreen \\u{7}\\u{7f}\n"
        );
        // On a terminal the subscriber's own colours are escape sequences: kept.
        assert_eq!(written_with(event, true), event);
        assert_eq!(written_with("a\nb\n", true), "a\\nb\n");
    }
}
