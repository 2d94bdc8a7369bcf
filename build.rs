// Embedded migrations must be re-read when a file is added to migrations/.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
