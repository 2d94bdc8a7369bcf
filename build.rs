//! Lists the migrations for the binary to embed: `$OUT_DIR/migrations.rs` has, for each backend, every
//! `migrations/<backend>/<version>_<description>.sql` as `(version, description, include_str!(file))`,
//! in file name order. (sqlx's `migrate!` macro does the same, at the cost of compiling sqlx's database
//! drivers, with SQLite's C source, a second time into the macro.)

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut code = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = root.join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable migrations folder").path())
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        writeln!(
            code,
            "pub(super) const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        )
        .unwrap();
        for path in files {
            let stem = path
                .file_stem()
                .unwrap()
                .to_str()
                .expect("a UTF-8 file name");
            let (version, description) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{stem}: not <version>_<description>.sql"));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("{stem}: the version is not a number"));
            writeln!(
                code,
                "    ({version}, {:?}, include_str!({:?})),",
                description.replace('_', " "),
                path.display().to_string()
            )
            .unwrap();
        }
        code.push_str("];\n");
    }
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(out, code).unwrap();
}
