//! An example module crate, as a user would publish one: a module in its own namespace
//! (`greeters.plain`) and a host subcommand (`greet`). `examples/xbuild.toml` builds it
//! into two distributions.

use serde::Deserialize;
use xbuild_core::Module;

/// Greets with a configurable word; `{}` or `{"word": "hi"}` as config.
#[derive(Deserialize)]
struct Plain {
    #[serde(default = "hello")]
    word: String,
}

fn hello() -> String {
    "hello".into()
}

impl Module for Plain {
    fn validate(&self) -> Result<(), xbuild_core::BoxError> {
        if self.word.trim().is_empty() {
            return Err("word must not be empty".into());
        }
        Ok(())
    }
}

xbuild_core::register_module!("greeters.plain", Plain);

/// `HOST greet [NAME]`: prints a greeting.
fn greet(args: Vec<String>) -> i32 {
    let who = args.first().map_or("world", String::as_str);
    println!("hello, {who}");
    0
}

xbuild_core::register_command!("greet", "Print a greeting", greet);
