//! The `sandbox-demo` binary: everything is in the library; see `sandbox_demo::run`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(sandbox_demo::run(&args));
}
