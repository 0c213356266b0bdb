//! mfactl: the command line of mfad. The program lives in the library.

fn main() -> std::process::ExitCode {
    mfactl::main()
}
