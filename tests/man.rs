//! man/semleak.1 is generated from the clap definitions; this test fails
//! when it is stale. Regenerate with `SEMLEAK_UPDATE_MAN=1 cargo test --test man`.

use clap::CommandFactory;

fn render() -> String {
    let cmd = semleak::cli::Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone()).date("");
    man.render(&mut out).expect("render top-level page");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("semleak {}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let man = clap_mangen::Man::new(sub.clone());
        let mut section = Vec::new();
        man.render_description_section(&mut section).unwrap();
        man.render_synopsis_section(&mut section).unwrap();
        man.render_options_section(&mut section).unwrap();
        let section = String::from_utf8(section).unwrap();
        // One page: each subcommand's sections under its own headings.
        let section = section
            .replace(
                ".SH DESCRIPTION",
                &format!(".SH \"COMMAND: {}\"", name.to_uppercase()),
            )
            .replace(".SH SYNOPSIS", ".SS Synopsis")
            .replace(".SH OPTIONS", ".SS Options");
        out.extend_from_slice(section.as_bytes());
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn man_page_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/semleak.1");
    let want = render();
    if std::env::var_os("SEMLEAK_UPDATE_MAN").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "man/semleak.1 is stale: run `SEMLEAK_UPDATE_MAN=1 cargo test --test man` and commit it"
    );
}
