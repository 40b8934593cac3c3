//! Small helpers shared by the suite: run a binary and capture its output, or spawn it and
//! follow its output lines.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Safety net so a broken test fails instead of hanging; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "expected exit code {expected}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn run(bin: &str, args: &[&str]) -> Ran {
    Ran::from_output(
        Command::new(bin)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}")),
    )
}

/// A spawned process whose stdout lines arrive on a channel.
pub struct Spawned {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    /// stderr, read as it comes: a process that logs more than a pipe holds (a host's
    /// access log under load) would otherwise block on its next write.
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Spawned {
    pub fn new(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut pipe = BufReader::new(pipe);
                let mut line = Vec::new();
                while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            })
        };
        Self {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Waits until stderr holds `needle` at least `count` times (a signal sent before the
    /// process acted on the previous one can be merged with it); returns stderr so far.
    pub fn wait_for_stderr(&mut self, needle: &str, count: usize) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        while self.stderr.lock().unwrap().matches(needle).count() < count {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "stderr never held {needle:?} {count} times:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stdout line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let stderr = self.stderr();
                    panic!(
                        "no line containing {needle:?}; stdout so far: {:?}\nstderr:\n{stderr}",
                        self.seen
                    )
                }
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for exit; returns the exit code, the remaining stdout and all of stderr.
    pub fn finish(self) -> Ran {
        self.finish_within(PATIENCE)
    }

    /// [`finish`](Self::finish) for processes that compile (slower on a busy machine).
    pub fn finish_within(mut self, patience: Duration) -> Ran {
        let deadline = std::time::Instant::now() + patience;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("process did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = self.seen.join("\n");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            stdout.push('\n');
            stdout.push_str(&line);
        }
        Ran {
            code: status.code(),
            stdout,
            stderr: self.stderr(),
        }
    }

    /// All of stderr; the process must have exited (or been killed).
    fn stderr(&mut self) -> String {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr.lock().unwrap().clone()
    }
}

/// A file's sha256, as manifests and `verify` show it.
pub fn sha256(path: &Path) -> String {
    xbuild_cli::sbom::sha256_file(path).unwrap()
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

pub mod http;
pub mod registry;
pub mod xbuild;

/// `text` with what changes from run to run written as placeholders, for whole-output
/// snapshots: `root` as `[ROOT]`, a log line's leading timestamp as `[TIME]`, hashes and
/// build IDs (runs of 32 or more hex digits) as `[HASH]`. The line xbuild prints while it
/// waits for the cache another test holds (the suite's tests share one cache) is left out.
pub fn redact(text: &str, root: &Path) -> String {
    let text = text.replace(root.to_str().expect("UTF-8 test root"), "[ROOT]");
    let text: String = text
        .split_inclusive('\n')
        .filter(|line| {
            !line
                .trim_start()
                .starts_with("Blocking for the lock on the xbuild cache")
        })
        .map(|line| {
            let b = line.as_bytes();
            let stamped = b.len() > 20
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[10] == b'T';
            match line.find("Z ") {
                Some(end) if stamped => format!("[TIME]{}", &line[end + 1..]),
                _ => line.to_owned(),
            }
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 32 {
            out.push_str("[HASH]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}
