//! Link settings for the `itkd` binary.

fn main() {
    // Segments aligned to 2 MiB in the file and in memory, so the master can move its code
    // and constants into transparent huge pages (itkd_sys::hugecode; bench/README.md).
    // The padding costs disk space only (sparse). `separate-code` (ld's default on
    // x86_64) keeps code on pages of its own, so no other segment shares its 2 MiB span.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,separate-code");
}
