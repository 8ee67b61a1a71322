//! Container attribution from `/proc/PID/cgroup`: Docker, containerd/CRI
//! (with the Kubernetes pod UID), CRI-O and Podman, cgroup v1 and v2,
//! systemd and cgroupfs drivers.

use std::io::{self, BufRead};

use crate::model::{Container, ContainerRuntime};

/// Reads `/proc/PID/cgroup` content and returns the container the first
/// line naming one points to (the v2 line and v1 hierarchies agree on a
/// container host; a cgroup namespace shows `/` and yields `None`).
pub fn parse_cgroup(reader: impl BufRead) -> io::Result<Option<Container>> {
    for line in reader.lines() {
        let line = line?;
        // hierarchy-ID:controller-list:path; the path may itself hold ':'.
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Some(container) = container_from_path(path) {
            return Ok(Some(container));
        }
    }
    Ok(None)
}

/// Attributes one cgroup path to a container, or `None`.
pub fn container_from_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod_uid = parts.iter().find_map(|p| pod_uid_of(p));
    let in_kubepods = parts.iter().any(|p| p.starts_with("kubepods"));
    for (i, part) in parts.iter().enumerate().rev() {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        let found = if let Some(id) = scope_id(part, "docker-") {
            Some((ContainerRuntime::Docker, id))
        } else if let Some(id) = scope_id(part, "cri-containerd-") {
            Some((ContainerRuntime::Containerd, id))
        } else if let Some(id) = scope_id(part, "crio-") {
            Some((ContainerRuntime::CriO, id))
        } else if let Some(id) = scope_id(part, "libpod-") {
            Some((ContainerRuntime::Podman, id))
        } else if is_container_id(part) {
            // cgroupfs driver: the bare id under its runtime's parent.
            let runtime = match parent {
                Some("docker") if !in_kubepods => ContainerRuntime::Docker,
                Some(p) if p.starts_with("libpod") || p == "machine.slice" => {
                    ContainerRuntime::Podman
                }
                _ if in_kubepods => ContainerRuntime::Cri,
                _ => continue,
            };
            Some((runtime, *part))
        } else {
            None
        };
        if let Some((runtime, id)) = found {
            return Some(Container {
                runtime,
                id: id.to_owned(),
                pod_uid: if in_kubepods { pod_uid.clone() } else { None },
            });
        }
    }
    None
}

/// `<prefix><id>.scope` → id, when id is a container id.
fn scope_id<'a>(part: &'a str, prefix: &str) -> Option<&'a str> {
    let id = part.strip_prefix(prefix)?.strip_suffix(".scope")?;
    is_container_id(id).then_some(id)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pod UID in `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice`
/// (systemd, where the UID's dashes become underscores).
fn pod_uid_of(part: &str) -> Option<String> {
    let part = part.strip_suffix(".slice").unwrap_or(part);
    let at = part.rfind("pod")?;
    let prefix = &part[..at];
    if !(prefix.is_empty() || prefix.starts_with("kubepods")) {
        return None;
    }
    let uid = part[at + 3..].replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    ok.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const UID: &str = "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d";

    fn parse(text: &str) -> Option<Container> {
        parse_cgroup(text.as_bytes()).unwrap()
    }

    fn expect(runtime: ContainerRuntime, pod: bool) -> Option<Container> {
        Some(Container {
            runtime,
            id: ID.to_owned(),
            pod_uid: pod.then(|| UID.to_owned()),
        })
    }

    #[test]
    fn docker_cgroupfs_v1() {
        let text =
            format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(parse(&text), expect(ContainerRuntime::Docker, false));
    }

    #[test]
    fn docker_systemd_v2() {
        let text = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(parse(&text), expect(ContainerRuntime::Docker, false));
    }

    #[test]
    fn containerd_systemd_v2_with_pod_uid_underscores() {
        let uid = UID.replace('-', "_");
        let text = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&text), expect(ContainerRuntime::Containerd, true));
    }

    #[test]
    fn kubernetes_cgroupfs_v1_with_pod_uid_dashes() {
        let text = format!(
            "12:memory:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n"
        );
        assert_eq!(parse(&text), expect(ContainerRuntime::Cri, true));
    }

    #[test]
    fn kubernetes_guaranteed_pod_systemd_v1() {
        let uid = UID.replace('-', "_");
        let text = format!(
            "4:cpu,cpuacct:/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&text), expect(ContainerRuntime::Containerd, true));
    }

    #[test]
    fn crio_v2() {
        let text = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{ID}.scope\n",
            UID.replace('-', "_")
        );
        assert_eq!(parse(&text), expect(ContainerRuntime::CriO, true));
    }

    #[test]
    fn podman_systemd_v2_and_v1() {
        let v2 = format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n");
        assert_eq!(parse(&v2), expect(ContainerRuntime::Podman, false));
        let v1 = format!("1:name=systemd:/machine.slice/libpod-{ID}.scope\n");
        assert_eq!(parse(&v1), expect(ContainerRuntime::Podman, false));
        let cgroupfs = format!("0::/libpod_parent/libpod-{ID}\n0::/libpod_parent/{ID}\n");
        assert_eq!(parse(&cgroupfs), expect(ContainerRuntime::Podman, false));
    }

    #[test]
    fn host_processes_and_cgroup_namespaces_have_no_container() {
        assert_eq!(
            parse("0::/user.slice/user-1000.slice/session-3.scope\n"),
            None
        );
        assert_eq!(parse("0::/\n"), None);
        assert_eq!(parse("12:pids:/docker\n"), None);
        assert_eq!(parse("0::/system.slice/docker-notanid.scope\n"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("garbage\n"), None);
    }
}
