//! Embeds the portal and the console (`web/` at the workspace root) in the binary: writes a
//! table of the files, with `include_bytes!` and an ETag each, to `$OUT_DIR/web_assets.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// FNV-1a: enough to tell versions of a file apart for caching.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest)
        .join("../../web")
        .canonicalize()
        .expect("the web/ folder at the workspace root");
    // Relative to the package: the fingerprint then follows the tree being built, also when
    // several checkouts (git worktrees) share one target directory.
    println!("cargo:rerun-if-changed=../../web");
    let mut files = vec![];
    walk(&root, &mut files);
    let mut table = String::from("static ASSETS: &[Asset] = &[\n");
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .expect("under web/")
            .to_str()
            .expect("UTF-8 file names in web/")
            .replace('\\', "/");
        let bytes = std::fs::read(&path).expect("readable web/ files");
        let abs = path.to_str().expect("a UTF-8 path");
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, body: include_bytes!({abs:?}), etag: \"\\\"{:016x}\\\"\" }},",
            fnv1a(&bytes)
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("web_assets.rs");
    std::fs::write(out, table).expect("writable OUT_DIR");
}
