//! The host command `hash-password`: turns a password into the line `basic_auth`'s config
//! holds, so nobody has to put a plain-text password in a config file.

use std::io::{self, BufRead, IsTerminal, Write};

use argon2::{Argon2, PasswordHasher};
use xbuild_core::BoxError;

const HELP: &str = "\
Hash a password for basic_auth's config (argon2id, with a random salt).

usage: HOST hash-password [--plaintext PASSWORD]

Without --plaintext the password is read from standard input: asked for twice, without
echo, on a terminal; otherwise the first line is taken. Prefer that: a password on the
command line is visible to other users of the machine and kept in shell history.

Prints the PHC string to give as an account's password:
  accounts = [ { username = \"alice\", password = \"$argon2id$v=19$...\" } ]";

const USAGE_HELP: &str =
    "usage: HOST hash-password [--plaintext PASSWORD]; see `HOST hash-password --help`";

/// The argon2id PHC string of `password` (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`),
/// with argon2's default parameters and a fresh random salt: what `HOST hash-password`
/// prints, and what `basic_auth`'s `accounts[].password` takes.
///
/// ```
/// let hash = xbuild_http_auth::hash_password(b"correct horse")?;
/// assert!(hash.starts_with("$argon2id$v=19$"));
/// # Ok::<(), xbuild_core::BoxError>(())
/// ```
pub fn hash_password(password: &[u8]) -> Result<String, BoxError> {
    let hash = Argon2::default()
        .hash_password(password)
        .map_err(|e| format!("could not hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// `HOST hash-password [--plaintext PASSWORD]`.
fn command(args: Vec<String>) -> i32 {
    let interactive = io::stdin().is_terminal();
    run(
        &args,
        || read_password(interactive),
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    )
}

/// The command, with its input and output given: 0 when the hash is printed, 2 for bad
/// usage (an error and a hint on `err`), 1 when reading or hashing failed.
fn run(
    args: &[String],
    read: impl FnOnce() -> io::Result<Option<String>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut plaintext: Option<String> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(out, "{HELP}");
                return 0;
            }
            "--plaintext" => match args.next() {
                Some(value) => value.clone(),
                None => return usage(err, "`--plaintext` needs a value", USAGE_HELP),
            },
            other => match other.strip_prefix("--plaintext=") {
                Some(value) => value.to_owned(),
                // Not echoed unless it looks like an option: it may be a password.
                None if other.starts_with('-') => {
                    return usage(err, &format!("unexpected argument `{other}`"), USAGE_HELP);
                }
                None => {
                    return usage(
                        err,
                        "unexpected argument",
                        "give the password after `--plaintext`, or on standard input",
                    );
                }
            },
        };
        if plaintext.replace(value).is_some() {
            return usage(err, "`--plaintext` is given twice", USAGE_HELP);
        }
    }
    let password = match plaintext {
        Some(password) => password,
        None => match read() {
            Ok(password) => password.unwrap_or_default(),
            Err(e) => {
                let _ = writeln!(err, "error: could not read the password: {e}");
                return 1;
            }
        },
    };
    if password.is_empty() {
        return usage(
            err,
            "the password is empty",
            "give a password with `--plaintext PASSWORD` or on standard input",
        );
    }
    match hash_password(password.as_bytes()) {
        Ok(hash) => {
            let _ = writeln!(out, "{hash}");
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}

fn usage(err: &mut dyn Write, error: &str, help: &str) -> i32 {
    let _ = writeln!(err, "error: {error}\nhelp: {help}");
    2
}

/// The password from standard input: prompted for twice without echo on a terminal, else
/// the first line (without its line ending). `None` at end of input.
fn read_password(interactive: bool) -> io::Result<Option<String>> {
    if interactive {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            return Err(io::Error::other("the two passwords differ"));
        }
        return Ok(Some(first));
    }
    first_line(&mut io::stdin().lock())
}

fn first_line(input: &mut dyn BufRead) -> io::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(Some(line))
}

xbuild_core::register_command!(
    "hash-password",
    "Hash a password for basic_auth's config (argon2id)",
    command
);

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;

    /// Runs the command; returns (exit code, stdout, stderr).
    fn run_with(args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = stdin.as_bytes();
        let code = run(&args, || first_line(&mut input), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn verifies(hash_line: &str, password: &str) -> bool {
        let hash = PasswordHash::new(hash_line.trim_end()).unwrap();
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    }

    #[test]
    fn the_printed_hash_verifies_the_password_given() {
        let (code, out, err) = run_with(&["--plaintext", "s3cret pass"], "");
        assert_eq!((code, err.as_str()), (0, ""));
        assert!(out.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{out}");
        assert!(verifies(&out, "s3cret pass"));
        assert!(!verifies(&out, "s3cret"));

        // From standard input: the first line, without its line ending; a fresh salt.
        let (code, again, _) = run_with(&[], "s3cret pass\r\nignored\n");
        assert_eq!(code, 0);
        assert!(verifies(&again, "s3cret pass"));
        assert_ne!(out, again);

        let (code, out, _) = run_with(&["--plaintext=a=b"], "");
        assert_eq!(code, 0);
        assert!(verifies(&out, "a=b"));
    }

    #[test]
    fn bad_usage_says_what_to_do_and_exits_2() {
        for (args, stdin, error) in [
            (
                &["--plaintext"][..],
                "",
                "error: `--plaintext` needs a value\nhelp: usage:",
            ),
            (
                &["--verbose"][..],
                "",
                "error: unexpected argument `--verbose`\nhelp: usage:",
            ),
            (
                &["hunter2"][..],
                "",
                "error: unexpected argument\nhelp: give the password after",
            ),
            (
                &["--plaintext", "a", "--plaintext", "b"][..],
                "",
                "error: `--plaintext` is given twice",
            ),
            (
                &[][..],
                "",
                "error: the password is empty\nhelp: give a password",
            ),
            (
                &[][..],
                "\n",
                "error: the password is empty\nhelp: give a password",
            ),
        ] {
            let (code, out, err) = run_with(args, stdin);
            assert_eq!(code, 2, "{args:?}");
            assert!(out.is_empty(), "{args:?}: {out}");
            assert!(err.starts_with(error), "{args:?}: {err}");
            assert!(
                !err.contains("hunter2"),
                "a password is never echoed: {err}"
            );
        }
        let (code, out, _) = run_with(&["--help"], "");
        assert_eq!(code, 0);
        assert!(
            out.contains("usage: HOST hash-password [--plaintext PASSWORD]"),
            "{out}"
        );
    }
}
