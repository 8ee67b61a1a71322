//! man/semleak.1 is generated from the clap definitions plus the sections
//! clap does not know (EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES, SEE ALSO);
//! this test fails when it is stale. Regenerate with
//! `SEMLEAK_UPDATE_MAN=1 cargo test --test man`.

use clap::CommandFactory;

/// Each subcommand's exit statuses, in the order of the COMMANDS section.
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "scan, analyze",
        "0 nothing at or above \\-\\-fail\\-on; 1 findings at or above it; 2 usage error, \
         bad input (an unreadable or invalid snapshot, baseline or allowlist) or internal failure.",
    ),
    (
        "run",
        "the command's own status when it failed (128+N when killed by signal N; 126 when it \
         cannot be executed, 127 when it is not found); otherwise \\-\\-leak\\-exit\\-code \
         (default 1) when it leaked something at or above \\-\\-fail\\-on; otherwise 0; 2 usage \
         error or internal failure.",
    ),
    (
        "clean",
        "0 everything planned was done (or a dry run); 1 something planned could not be done \
         (refused by the re\\-check or failed); 2 usage error or internal failure.",
    ),
    (
        "snapshot, completions",
        "0 written; 2 usage error or failure.",
    ),
    (
        "exporter",
        "0 stopped by SIGTERM or SIGINT; 2 usage error or the address cannot be bound.",
    ),
];

const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI.semleak.toml\fR
The allowlist of \fBscan\fR, \fBanalyze\fR and \fBrun\fR, looked for in the current directory
and its parents unless \fB\-\-allow\fR names a file. Each \fB[[allow]]\fR entry gives at least one of
\fBkind\fR, \fBname\fR (a glob on resource names and paths) and \fBcmdline\fR (a glob on the
command lines of the finding's processes), and a \fBreason\fR:
.PP
.nf
.RS 7
[[allow]]
kind = "leaked_semaphore"
name = "loky\-*"
cmdline = "*pytest*"
reason = "loky leaks on timeout, tracked in #123"
.RE
.fi
.PP
Input files are read up to a limit and refused beyond it: 64 MiB for a snapshot given to
\fBanalyze\fR, 16 MiB for a \fB\-\-baseline\fR, allowlist or \fB\-\-probe\-names\fR file.
.TP
\fI/dev/shm/sem.*\fR
POSIX named semaphores (glibc); other entries of \fI/dev/shm\fR are shared\-memory objects.
.TP
\fI/proc/PID/maps\fR, \fI/proc/PID/fdinfo\fR
Where holders of semaphores and ends of pipes and sockets are found.
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set to a non\-empty value, \fB\-\-color auto\fR does not colour.
.TP
\fBGITHUB_ACTIONS\fR, \fBGITHUB_STEP_SUMMARY\fR
When \fBGITHUB_ACTIONS\fR is \fBtrue\fR, \fBsemleak run\fR writes one \fB::error::\fR,
\fB::warning::\fR or \fB::notice::\fR line per finding to standard error and appends a markdown
summary to the file \fBGITHUB_STEP_SUMMARY\fR names (a symbolic link is refused, not followed).
.SH EXAMPLES
.TP
\fBsemleak scan\fR
Look at this host once; exit status 1 if anything is an error.
.TP
\fBsemleak scan \-\-format json \-\-fail\-on warning > report.json\fR
The JSON report for monitoring; fail on warnings too.
.TP
\fBsemleak run \-\-junit semleak.xml \-\- pytest \-q\fR
Run the tests as a leak gate, with a JUnit report for GitLab or Jenkins. The \fB\-\-\fR is
optional: everything from the command on is the command's.
.TP
\fBsemleak run \-\-leak\-exit\-code 3 \-\-baseline old.json pytest \-q\fR
Tell leaks (3) from failing tests (their own status); leaks in \fIold.json\fR are not counted.
.TP
\fBsemleak clean\fR, then \fBsemleak clean \-\-yes \-\-kind leaked_semaphore\fR
See what would be removed and why, then remove the leaked semaphores.
.TP
\fBsemleak snapshot \-\-redact \-o host.json\fR; \fBsemleak analyze host.json\fR
Save what was collected, without command\-line arguments or host name, for a bug report; analyse it anywhere.
.TP
\fBsemleak scan \-\-format prometheus \-o /var/lib/node_exporter/textfile/semleak.prom\fR
Metrics for node_exporter's textfile collector, written atomically.
.TP
\fBsemleak exporter \-\-listen 127.0.0.1:9877\fR
Serve the metrics over HTTP at \fB/metrics\fR, one scan per scrape.
.TP
\fBsemleak completions bash > /etc/bash_completion.d/semleak\fR
Install shell completions.
.SH "SEE ALSO"
\fBlsipc\fR(1), \fBlsof\fR(8), \fBipcrm\fR(1), \fBipcs\fR(1), \fBsem_overview\fR(7),
\fBshm_overview\fR(7), \fBproc\fR(5)
"#;

fn render() -> String {
    let cmd = semleak::cli::Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).date("");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    let mut page = String::from_utf8(out).unwrap();

    // The subcommands are sections of this page, not pages of their own.
    page.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        page.push_str(&format!(
            ".TP\n\\fBsemleak {}\\fR\n{}\n",
            sub.get_name(),
            roff(&about)
        ));
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("semleak {}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().name(name.clone()));
        let mut section = Vec::new();
        man.render_description_section(&mut section).unwrap();
        man.render_synopsis_section(&mut section).unwrap();
        man.render_options_section(&mut section).unwrap();
        let section = String::from_utf8(section).unwrap();
        let mut lines = Vec::new();
        for line in section.lines() {
            let line = if line == ".SH DESCRIPTION" {
                format!(".SH \"COMMAND: {}\"", name.to_uppercase())
            } else if line == ".SH SYNOPSIS" {
                ".SS Synopsis".to_string()
            } else if line == ".SH OPTIONS" {
                ".SS Options".to_string()
            } else if let Some(heading) = line.strip_prefix(".SH ") {
                // Help headings (GATE, COLLECTION, …) belong to this command.
                format!(".SS \"{} options\"", title_case(heading.trim_matches('"')))
            } else if line.starts_with("\\fBsemleak run\\fR") {
                // clap's synopsis cannot say that `--` may come before CMD.
                line.replace(
                    "<\\fICMD\\fR>",
                    "[\\fB\\-\\-\\fR] \\fICMD\\fR [\\fIARGS\\fR]...",
                )
            } else {
                line.to_string()
            };
            lines.push(line);
        }
        page.push_str(&lines.join("\n"));
        page.push('\n');
    }

    page.push_str(".SH \"EXIT STATUS\"\n");
    for (commands, status) in EXIT_STATUS {
        page.push_str(&format!(".TP\n\\fB{commands}\\fR\n{status}\n"));
    }
    page.push_str(EXTRA_SECTIONS);
    let mut version = Vec::new();
    man.render_version_section(&mut version).unwrap();
    page.push_str(&String::from_utf8(version).unwrap());
    page
}

fn roff(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

fn title_case(heading: &str) -> String {
    let lower = heading.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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

#[test]
fn man_page_has_the_sections_a_reader_looks_for() {
    let page = render();
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        ".SH EXAMPLES",
        ".SH \"SEE ALSO\"",
        ".SH \"COMMAND: SEMLEAK RUN\"",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
    // Every subcommand has its exit status.
    let cmd = semleak::cli::Cli::command();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        assert!(
            EXIT_STATUS
                .iter()
                .any(|(cmds, _)| cmds.split(", ").any(|c| c == sub.get_name())),
            "no EXIT STATUS for {}",
            sub.get_name()
        );
    }
    // No references to pages that do not exist (semleak-scan(1), …).
    assert!(!page.contains("semleak\\-"), "refers to a per-command page");
    assert!(page.contains("[\\fB\\-\\-\\fR] \\fICMD\\fR [\\fIARGS\\fR]..."));
    assert!(page.contains(".TP\n\\fI.semleak.toml\\fR"));
}
