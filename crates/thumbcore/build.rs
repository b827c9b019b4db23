//! Compiles the libjpeg shim (`csrc/tdjpeg.c`) and links the system libjpeg-turbo.
//!
//! libjpeg-turbo comes from the operating system (Debian: `libjpeg62-turbo-dev`), which ships
//! its SIMD code already built: no cmake or nasm at build time, one small C file to compile.
fn main() {
    println!("cargo:rerun-if-changed=csrc/tdjpeg.c");
    let mut build = cc::Build::new();
    build.file("csrc/tdjpeg.c").warnings(true).opt_level(2);
    if let Ok(dir) = std::env::var("THUMBD_JPEG_INCLUDE_DIR") {
        build.include(dir);
    }
    println!("cargo:rerun-if-env-changed=THUMBD_JPEG_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=THUMBD_JPEG_LIB_DIR");
    build.compile("tdjpeg");
    if let Ok(dir) = std::env::var("THUMBD_JPEG_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
    }
    println!("cargo:rustc-link-lib=jpeg");
}
