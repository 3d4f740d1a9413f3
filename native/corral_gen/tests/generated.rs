//! The committed man page and completions: fresh, rendering, completing.

use std::path::PathBuf;
use std::process::Command;

const GEN: &str = env!("CARGO_BIN_EXE_corral-gen");

/// The repository's `docs/`, where `make man` writes.
fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn committed_files_match_the_options() {
    let o = Command::new(GEN)
        .arg("--check")
        .arg(docs())
        .output()
        .expect("corral-gen runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_man_page_renders_with_examples_and_exit_status() {
    let o = Command::new("man")
        .arg("-l")
        .arg(docs().join("man/corral.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man(1) runs (Debian: apt-get install man-db)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = String::from_utf8_lossy(&o.stdout);
    for want in [
        "SYNOPSIS",
        "LIMITS",
        "--memory-limit",
        "EXAMPLES",
        "EXIT STATUS",
        "124",
    ] {
        assert!(page.contains(want), "no {want:?} in {page}");
    }
    assert!(!page.to_lowercase().contains("frame"), "{page}");
    assert!(!page.contains("--port"), "{page}");
}

/// What the bash completion offers for the words typed so far, the last
/// being the one completed.
fn complete(words: &[&str]) -> Vec<String> {
    let script = docs().join("completions/corral.bash");
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let line = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; \
         _corral corral '{}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &line])
        .output()
        .expect("bash runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_people_s_options_only() {
    assert_eq!(complete(&["corral", "--me"]), ["--memory-limit"]);
    assert_eq!(
        complete(&["corral", "--stderr", ""]),
        ["inherit", "null", "stdout"]
    );
    let all = complete(&["corral", "--"]);
    assert!(all.contains(&"--capture-env".to_owned()), "{all:?}");
    for hidden in ["--port", "--protocol", "--pooled", "--stdio-window"] {
        assert!(!all.contains(&hidden.to_owned()), "{hidden} in {all:?}");
    }
}
