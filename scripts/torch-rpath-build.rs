// Shared build script of every crate that links tch (referenced as `build = "../scripts/torch-rpath-build.rs"`).
// torch-sys' own -rpath does not reach final binaries, so bake $LIBTORCH/lib into
// ours: binaries and test executables then run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&dir).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        // Cargo links with --as-needed, which drops libtorch_cuda (nothing references it
        // by symbol) so CUDA never loads; force it in only when a CUDA libtorch is present.
        if lib.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
    }
}
