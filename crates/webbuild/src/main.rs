//! `shipshape-webbuild`: builds the web app without downloading anything.
//!
//! 1. `cargo build` of the `frontend` crate for `wasm32-unknown-unknown` (profile
//!    `wasm-release`, size-optimised; `--dev` for a quick debug build), with the linker's
//!    relocations kept (`.cargo/config.toml`);
//! 2. the split (`wasm_split_cli_support`): each screen marked `#[wasm_split(…)]` goes to a
//!    module of its own, code that several screens share to shared modules, and a loader
//!    script fetches them when a screen is first opened;
//! 3. the wasm-bindgen library (the exact version in `Cargo.lock`) writes the JS glue of the
//!    main module;
//! 4. wasm-opt on every module when a binaryen of version 116 or newer is at hand
//!    (`WASM_OPT`, or `frontend/node_modules/.bin/wasm-opt` from `npm ci --prefix frontend`)
//!    — Debian's binaryen 108 breaks modules, so it is never picked up from `PATH`;
//! 5. everything in one folder named by a hash of its contents, so the server may cache it
//!    for good, each file also gzipped with Zopfli (`.gz`, served as is to browsers that
//!    accept gzip), and an `index.html` that names the folder, written to `frontend/dist`
//!    (replaced as a whole).
//!
//! It prints what a browser downloads on its first visit (gzip), for each screen.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use sha2::{Digest, Sha256};

const CRATE: &str = "shipshape-web";
const WASM_NAME: &str = "shipshape_web";
/// What wasm-opt is asked for: size optimisation without inlining, and without the custom
/// sections browsers ignore. Measured on the web app by the gzip size a browser downloads,
/// inlining (part of `-Oz`) makes the modules smaller but compress worse: with `-Oz` the
/// first load of a run page was 307 KB, with these flags 276 KB.
const WASM_OPT_FLAGS: [&str; 6] = [
    "-Os",
    "--always-inline-max-function-size=0",
    "--one-caller-inline-max-function-size=0",
    "--flexible-inline-max-function-size=0",
    "--strip-producers",
    "--strip-target-features",
];
/// The split loader, as the main module imports it, and its file.
const LOADER: &str = "./__wasm_split.js";
const LOADER_FILE: &str = "__wasm_split.js";

type BoxError = Box<dyn std::error::Error>;

struct Options {
    dev: bool,
    out: PathBuf,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shipshape-webbuild: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // crates/webbuild → the workspace.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parse_args(root: &Path) -> Result<Options, BoxError> {
    let mut options = Options {
        dev: false,
        out: root.join("frontend/dist"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dev" => options.dev = true,
            "--out" => options.out = args.next().ok_or("--out needs a folder")?.into(),
            "-h" | "--help" => {
                println!("usage: shipshape-webbuild [--dev] [--out DIR]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(options)
}

fn run() -> Result<(), BoxError> {
    let root = workspace_root();
    let options = parse_args(&root)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"));
    let profile = if options.dev { "dev" } else { "wasm-release" };

    // 1. The wasm32 build (adding the target to the toolchain when rustup can).
    ensure_wasm_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--locked", "--target", "wasm32-unknown-unknown"])
        .args(["--package", CRATE, "--lib", "--profile", profile])
        .status()?;
    if !status.success() {
        return Err("the wasm32 build of the web app failed".into());
    }
    let profile_dir = if options.dev { "debug" } else { profile };
    let wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join(profile_dir)
        .join(format!("{WASM_NAME}.wasm"));

    // 2. The split: every `#[wasm_split(name)]` screen goes to a module of its own; what
    //    several screens share goes to shared modules. The loader script fetches them.
    let staging = target_dir.join("webbuild");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let app = staging.join("app");
    std::fs::create_dir_all(&app)?;
    let input = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let main_wasm = staging.join("main.wasm");
    let split = {
        let mut split = wasm_split_cli_support::Options::new(&input);
        split.output_dir = &app;
        split.main_out_path = &main_wasm;
        split.link_name = LOADER;
        split.main_module = "./shipshape.js";
        wasm_split_cli_support::transform(split)
            .map_err(|e| format!("splitting the module: {e:#}"))?
    };

    // 3. wasm-bindgen writes the JS glue of the main module.
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&main_wasm)
        .out_name("shipshape")
        .web(true)?
        .typescript(false)
        .omit_default_module_path(false)
        .keep_lld_exports(true)
        .demangle(false)
        .debug(options.dev)
        .generate(&app)?;
    let mut modules = vec![app.join("shipshape_bg.wasm")];
    modules.extend(split.split_modules.iter().cloned());

    // 4. wasm-opt on each module, when a good one is at hand.
    if !options.dev {
        match wasm_opt(&root) {
            Some(tool) => {
                for module in &modules {
                    // Without the name section, which wasm-opt drops anyway (and whose
                    // split-module form it warns about); it reads the target's features.
                    let bytes = std::fs::read(module)?;
                    std::fs::write(module, strip_sections(&bytes, &["name"])?)?;
                    let optimised = module.with_extension("opt");
                    let status = Command::new(&tool)
                        .arg(module)
                        .args(WASM_OPT_FLAGS)
                        .arg("-o")
                        .arg(&optimised)
                        .status()?;
                    if !status.success() {
                        return Err(
                            format!("{} failed on {}", tool.display(), module.display()).into()
                        );
                    }
                    std::fs::rename(&optimised, module)?;
                }
            }
            None => {
                eprintln!(
                    "shipshape-webbuild: no wasm-opt (run `npm ci --prefix frontend`); the modules are larger"
                );
                for module in &modules {
                    let bytes = std::fs::read(module)?;
                    std::fs::write(module, strip_sections(&bytes, &UNSENT_SECTIONS)?)?;
                }
            }
        }
    }
    if !options.dev {
        // The glue's comments and indentation are for people reading it; browsers are not.
        let glue = app.join("shipshape.js");
        let js = std::fs::read_to_string(&glue)?;
        std::fs::write(&glue, without_comments(&js))?;
    }
    let css = std::fs::read_to_string(root.join("frontend/style.css"))?;
    std::fs::write(app.join("shipshape.css"), compact_css(&css))?;
    // The tab's icon: an anchor, drawn as SVG (browsers fetch it apart from the page).
    std::fs::copy(root.join("frontend/favicon.svg"), app.join("favicon.svg"))?;

    // 5. The files go in a folder named by a hash of them all (the main module and the
    //    loader name each other, so they cannot carry hashes of their own): the server may
    //    cache everything in it for good. Each file is also gzipped at the best level, served
    //    as is to browsers that accept gzip.
    let mut names: Vec<String> = std::fs::read_dir(&app)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut hasher = Sha256::new();
    let mut sizes = std::collections::BTreeMap::new();
    for name in &names {
        let bytes = std::fs::read(app.join(name))?;
        hasher.update(name.as_bytes());
        hasher.update(&bytes);
        let gz = gzip(&bytes)?;
        sizes.insert(name.clone(), (bytes.len(), gz.len()));
        std::fs::write(app.join(format!("{name}.gz")), &gz)?;
    }
    let folder = format!("app-{}", &hex::encode(hasher.finalize())[..16]);
    let template = std::fs::read_to_string(root.join("frontend/index.html"))?;
    let index = template.replace("{{APP}}", &format!("/{folder}"));
    let index_gz = gzip(index.as_bytes())?.len();

    let next = options.out.with_extension("next");
    if next.exists() {
        std::fs::remove_dir_all(&next)?;
    }
    std::fs::create_dir_all(&next)?;
    std::fs::rename(&app, next.join(&folder))?;
    std::fs::write(next.join("index.html"), &index)?;
    // The previous builds' folders stay a while: a tab opened before this build fetches the
    // screens it has not opened yet from its own build.
    let mut builds = vec![folder.clone()];
    for old in previous_builds(&options.out) {
        if builds.len() > KEPT_BUILDS {
            break;
        }
        if !builds.contains(&old) {
            copy_dir(&options.out.join(&old), &next.join(&old))?;
            builds.push(old);
        }
    }
    std::fs::write(next.join(BUILDS), builds.join("\n") + "\n")?;
    if options.out.exists() {
        std::fs::remove_dir_all(&options.out)?;
    }
    std::fs::rename(&next, &options.out)?;

    // What a browser downloads on its first visit: the page, the style, the glue, the loader,
    // the main module, and the modules of the screen it opens.
    for (name, (bytes, gz)) in &sizes {
        println!("{bytes:>9} B  {gz:>8} B gzip  {folder}/{name}");
    }
    let gz = |name: &str| sizes.get(name).map_or(0, |s| s.1);
    let shell = index_gz
        + [
            "shipshape.css",
            "shipshape.js",
            LOADER_FILE,
            "shipshape_bg.wasm",
        ]
        .iter()
        .map(|n| gz(n))
        .sum::<usize>();
    println!(
        "first load of the sign-in page (index.html, css, js, main module; gzip): {:.1} KB",
        shell as f64 / 1024.0
    );
    let mut screens: Vec<_> = split.prefetch_map.iter().collect();
    screens.sort();
    let mut largest = shell;
    for (screen, files) in screens {
        let total = shell
            + files
                .iter()
                .map(|f| gz(&format!("{f}.wasm")))
                .sum::<usize>();
        largest = largest.max(total);
        println!(
            "first load of the {screen} screen (and the modules it needs): {:.1} KB ({total} B)",
            total as f64 / 1024.0
        );
    }
    println!(
        "largest first load (gzip): {:.1} KB → {}",
        largest as f64 / 1024.0,
        options.out.display()
    );
    Ok(())
}

/// wasm-bindgen's glue without its whole-line comments (`//`, and `/* … */` blocks that open
/// a line) and each line's surrounding white space. Lines are kept whole, so nothing joins
/// two statements; the glue holds no string that spans lines (a test checks a built one).
fn without_comments(js: &str) -> String {
    let mut out = String::with_capacity(js.len());
    let mut in_block = false;
    for line in js.lines() {
        let t = line.trim();
        if in_block {
            in_block = !t.ends_with("*/");
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.ends_with("*/");
            continue;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    out
}

/// The stylesheet without its comments and each line's surrounding white space (it is part
/// of every screen's first load). Lines stay lines, so no two tokens join; the stylesheet
/// holds no `/*` inside a string.
fn compact_css(css: &str) -> String {
    let mut text = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    text.push_str(rest);
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// How many earlier builds stay served beside the new one.
const KEPT_BUILDS: usize = 2;

/// The list of the builds in the output folder, newest first (hidden: never served).
const BUILDS: &str = ".builds";

/// The `app-<hash>` folders of the builds in `out`, newest first, as its list names them.
fn previous_builds(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join(BUILDS))
        .unwrap_or_default()
        .lines()
        .filter(|name| name.starts_with("app-") && out.join(name).is_dir())
        .map(str::to_owned)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if let Ok(out) = installed
        && out.status.success()
        && !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        eprintln!("shipshape-webbuild: adding the wasm32-unknown-unknown target");
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status();
    }
}

/// The wasm-opt to use: `WASM_OPT`, else the one `npm ci --prefix frontend` installs.
fn wasm_opt(root: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WASM_OPT") {
        return Some(path.into());
    }
    let local = root.join("frontend/node_modules/.bin/wasm-opt");
    local.is_file().then_some(local)
}

/// Custom sections for debuggers and tools (function names, the producing toolchain, the
/// target's features): browsers ignore them, so they are not sent.
const UNSENT_SECTIONS: [&str; 3] = ["name", "producers", "target_features"];

/// Drops the custom sections named `names`.
fn strip_sections(wasm: &[u8], names: &[&str]) -> Result<Vec<u8>, BoxError> {
    fn leb(bytes: &[u8], mut at: usize) -> Result<(usize, usize), BoxError> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = *bytes.get(at).ok_or("truncated wasm module")?;
            at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return Ok((value, at));
            }
        }
    }
    let header = wasm.get(..8).ok_or("not a wasm module")?;
    let mut out = header.to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        let (size, body) = leb(wasm, at + 1)?;
        let end = body + size;
        let section = wasm.get(start..end).ok_or("truncated wasm module")?;
        let dropped = id == 0 && {
            let (len, name) = leb(wasm, body)?;
            let name = wasm.get(name..name + len).ok_or("truncated wasm module")?;
            names.iter().any(|n| n.as_bytes() == name)
        };
        if !dropped {
            out.extend_from_slice(section);
        }
        at = end;
    }
    Ok(out)
}

/// Gzip at the strongest setting there is (Zopfli: a few percent smaller than zlib's best,
/// and any gzip reader reads it). Slow, but it runs once per build.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = Vec::new();
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        bytes,
        &mut gz,
    )?;
    Ok(gz)
}

#[cfg(test)]
mod tests {
    use super::{compact_css, without_comments};

    #[test]
    fn the_stylesheet_loses_its_comments_and_indentation_but_no_rule() {
        let css = "/* The app. */\n:root {\n  --fg: #1b1f24; /* text */\n}\n\n/* Two\n   lines. */\n.a .b,\n.c { top: 0; }\n";
        assert_eq!(
            compact_css(css),
            ":root {\n--fg: #1b1f24;\n}\n.a .b,\n.c { top: 0; }\n"
        );
    }

    #[test]
    fn the_glue_loses_its_comments_and_indentation_but_no_code() {
        let js = "/**\n * Mounts the app.\n */\nexport function run() {\n    // Cast intrinsic\n    \
                  return `${val}`; // kept: code comes first\n    /* one line */\n}\n";
        assert_eq!(
            without_comments(js),
            "export function run() {\nreturn `${val}`; // kept: code comes first\n}\n"
        );
    }
}
