//! Container attribution from `/proc/PID/cgroup`: Docker, containerd/CRI
//! (with the Kubernetes pod UID), CRI-O and Podman, cgroup v1 and v2,
//! systemd and cgroupfs drivers.

use std::io::{self, BufRead};

use crate::model::{Container, ContainerRuntime, ContainerSource};

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
///
/// Only the places a runtime creates its cgroups are trusted, matched from
/// the root of the hierarchy: a user given a delegated subtree (everything
/// under `user@UID.service`, or a service with `Delegate=yes`) can create
/// directories of any name there, so `docker-<id>.scope` deep in a path
/// proves nothing. What sits below a container's own cgroup is that
/// container's, so trailing components are allowed.
pub fn container_from_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["system.slice", scope, ..] => systemd_scope(scope, &[Runtime::Docker]),
        ["machine.slice", scope, ..] => systemd_scope(scope, &[Runtime::Podman]),
        ["kubepods.slice", rest @ ..] => kubepods_systemd(rest),
        ["docker", id, ..] if is_container_id(id) => Some(container(
            ContainerRuntime::Docker,
            id,
            ContainerSource::CgroupfsPath,
        )),
        // Podman's cgroupfs manager (rootful): `libpod-<id>` or the bare id.
        ["libpod_parent", dir, ..] => {
            let id = dir.strip_prefix("libpod-").unwrap_or(dir);
            is_container_id(id)
                .then(|| container(ContainerRuntime::Podman, id, ContainerSource::CgroupfsPath))
        }
        ["kubepods", rest @ ..] => kubepods_cgroupfs(rest),
        ["user.slice", slice, service, rest @ ..] => rootless_podman(slice, service, rest),
        _ => None,
    }
}

/// The runtimes whose scopes are named `<prefix><id>.scope`.
#[derive(Clone, Copy)]
enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    fn prefix(self) -> &'static str {
        match self {
            Runtime::Docker => "docker-",
            Runtime::Containerd => "cri-containerd-",
            Runtime::CriO => "crio-",
            Runtime::Podman => "libpod-",
        }
    }

    fn model(self) -> ContainerRuntime {
        match self {
            Runtime::Docker => ContainerRuntime::Docker,
            Runtime::Containerd => ContainerRuntime::Containerd,
            Runtime::CriO => ContainerRuntime::CriO,
            Runtime::Podman => ContainerRuntime::Podman,
        }
    }
}

/// Runtimes a kubelet's pod slices hold (Docker through dockershim or
/// cri-dockerd).
const KUBERNETES_RUNTIMES: [Runtime; 3] = [Runtime::Containerd, Runtime::CriO, Runtime::Docker];

fn container(runtime: ContainerRuntime, id: &str, source: ContainerSource) -> Container {
    Container {
        runtime,
        id: id.to_owned(),
        pod_uid: None,
        source,
        user_uid: None,
    }
}

/// `<runtime>-<id>.scope` for one of `runtimes`.
fn systemd_scope(part: &str, runtimes: &[Runtime]) -> Option<Container> {
    runtimes.iter().find_map(|r| {
        scope_id(part, r.prefix()).map(|id| container(r.model(), id, ContainerSource::SystemdScope))
    })
}

/// Below `/kubepods.slice`: `kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/<scope>`,
/// or `kubepods-pod<uid>.slice/<scope>` for a guaranteed pod (no QoS level).
fn kubepods_systemd(rest: &[&str]) -> Option<Container> {
    let (pod, scope) = match (rest.first().copied().and_then(qos_slice), rest) {
        (Some(qos), [_, pod, scope, ..]) => (
            pod.strip_prefix("kubepods-")?
                .strip_prefix(qos)?
                .strip_prefix('-')?,
            *scope,
        ),
        (None, [pod, scope, ..]) => (pod.strip_prefix("kubepods-")?, *scope),
        _ => return None,
    };
    let uid = pod_uid(pod.strip_suffix(".slice")?)?;
    let mut container = systemd_scope(scope, &KUBERNETES_RUNTIMES)?;
    container.pod_uid = Some(uid);
    Some(container)
}

/// `kubepods-burstable.slice` → `burstable` (guaranteed pods have no QoS slice).
fn qos_slice(part: &str) -> Option<&str> {
    let qos = part.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
    matches!(qos, "burstable" | "besteffort").then_some(qos)
}

/// Below `/kubepods`: `<qos>/pod<uid>/<id>`, or `pod<uid>/<id>` for a
/// guaranteed pod. The path names no runtime.
fn kubepods_cgroupfs(rest: &[&str]) -> Option<Container> {
    let (pod, id) = match rest {
        ["burstable" | "besteffort", pod, id, ..] => (*pod, *id),
        [pod, id, ..] => (*pod, *id),
        _ => return None,
    };
    let uid = pod_uid(pod)?;
    if !is_container_id(id) {
        return None;
    }
    let mut container = container(ContainerRuntime::Cri, id, ContainerSource::CgroupfsPath);
    container.pod_uid = Some(uid);
    Some(container)
}

/// Rootless Podman: `user-<uid>.slice/user@<uid>.service/…/libpod-<id>.scope`.
/// Everything below `user@<uid>.service` is delegated to that user, who can
/// name a directory after any container; so only a Podman scope is accepted
/// there, and only as a container of that user (`user_uid`), never as a
/// root runtime's.
fn rootless_podman(slice: &str, service: &str, rest: &[&str]) -> Option<Container> {
    let uid = slice.strip_prefix("user-")?.strip_suffix(".slice")?;
    // The user's own manager, not another user's slice holding it.
    if service.strip_prefix("user@")?.strip_suffix(".service")? != uid {
        return None;
    }
    let uid: u32 = uid.parse().ok()?;
    let id = rest
        .iter()
        .find_map(|p| scope_id(p, Runtime::Podman.prefix()))?;
    let mut container = container(
        ContainerRuntime::Podman,
        id,
        ContainerSource::RootlessUserScope,
    );
    container.user_uid = Some(uid);
    Some(container)
}

/// `<prefix><id>.scope` → id, when id is a container id.
fn scope_id<'a>(part: &'a str, prefix: &str) -> Option<&'a str> {
    let id = part.strip_prefix(prefix)?.strip_suffix(".scope")?;
    is_container_id(id).then_some(id)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `pod<uid>` → the pod UID with dashes (the systemd driver writes them as
/// underscores).
fn pod_uid(part: &str) -> Option<String> {
    let uid = part.strip_prefix("pod")?.replace('_', "-");
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

    fn expect(runtime: ContainerRuntime, pod: bool, source: ContainerSource) -> Option<Container> {
        Some(Container {
            runtime,
            id: ID.to_owned(),
            pod_uid: pod.then(|| UID.to_owned()),
            source,
            user_uid: None,
        })
    }

    #[test]
    fn docker_cgroupfs_v1() {
        let text =
            format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(
            parse(&text),
            expect(
                ContainerRuntime::Docker,
                false,
                ContainerSource::CgroupfsPath
            )
        );
    }

    #[test]
    fn docker_systemd_v2() {
        let text = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            parse(&text),
            expect(
                ContainerRuntime::Docker,
                false,
                ContainerSource::SystemdScope
            )
        );
    }

    #[test]
    fn containerd_systemd_v2_with_pod_uid_underscores() {
        let uid = UID.replace('-', "_");
        let text = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            parse(&text),
            expect(
                ContainerRuntime::Containerd,
                true,
                ContainerSource::SystemdScope
            )
        );
    }

    #[test]
    fn kubernetes_cgroupfs_v1_with_pod_uid_dashes() {
        let text = format!(
            "12:memory:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n"
        );
        assert_eq!(
            parse(&text),
            expect(ContainerRuntime::Cri, true, ContainerSource::CgroupfsPath)
        );
        // A guaranteed pod has no QoS level.
        let text = format!("0::/kubepods/pod{UID}/{ID}\n");
        assert_eq!(
            parse(&text),
            expect(ContainerRuntime::Cri, true, ContainerSource::CgroupfsPath)
        );
    }

    #[test]
    fn kubernetes_guaranteed_pod_systemd_v1() {
        let uid = UID.replace('-', "_");
        let text = format!(
            "4:cpu,cpuacct:/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            parse(&text),
            expect(
                ContainerRuntime::Containerd,
                true,
                ContainerSource::SystemdScope
            )
        );
    }

    #[test]
    fn crio_v2() {
        let text = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{ID}.scope\n",
            UID.replace('-', "_")
        );
        assert_eq!(
            parse(&text),
            expect(ContainerRuntime::CriO, true, ContainerSource::SystemdScope)
        );
    }

    #[test]
    fn podman_rootful_systemd_and_cgroupfs() {
        let v1 = format!("1:name=systemd:/machine.slice/libpod-{ID}.scope\n");
        assert_eq!(
            parse(&v1),
            expect(
                ContainerRuntime::Podman,
                false,
                ContainerSource::SystemdScope
            )
        );
        let cgroupfs = format!("0::/libpod_parent/libpod-{ID}\n0::/libpod_parent/{ID}\n");
        assert_eq!(
            parse(&cgroupfs),
            expect(
                ContainerRuntime::Podman,
                false,
                ContainerSource::CgroupfsPath
            )
        );
    }

    #[test]
    fn rootless_podman_is_only_ever_that_users_container() {
        let v2 = format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n");
        let mut want = expect(
            ContainerRuntime::Podman,
            false,
            ContainerSource::RootlessUserScope,
        )
        .unwrap();
        want.user_uid = Some(1000);
        assert_eq!(parse(&v2), Some(want));
        // Another user's manager under this user's slice is no layout systemd makes.
        let mismatched = format!(
            "0::/user.slice/user-1000.slice/user@1001.service/user.slice/libpod-{ID}.scope\n"
        );
        assert_eq!(parse(&mismatched), None);
    }

    /// A user with a delegated subtree (`user@UID.service`, or a service with
    /// `Delegate=yes`) can name a directory after any container; only a
    /// runtime's own position, made by root, is trusted.
    #[test]
    fn container_names_in_delegated_subtrees_are_not_trusted() {
        let uid = UID.replace('-', "_");
        let spoofed = [
            format!("0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope"),
            format!("0::/user.slice/user-1000.slice/user@1000.service/app.slice/cri-containerd-{ID}.scope"),
            format!("0::/user.slice/user-1000.slice/user@1000.service/app.slice/crio-{ID}.scope"),
            format!("0::/user.slice/user-1000.slice/user@1000.service/docker/{ID}"),
            format!("0::/user.slice/user-1000.slice/user@1000.service/kubepods/pod{UID}/{ID}"),
            format!("0::/system.slice/foo.service/docker-{ID}.scope"),
            format!("0::/system.slice/foo.service/libpod-{ID}.scope"),
            format!("0::/system.slice/foo.service/docker/{ID}"),
            format!("0::/system.slice/foo.service/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{ID}.scope"),
            format!("0::/system.slice/libpod-{ID}.scope"),
            format!("0::/machine.slice/docker-{ID}.scope"),
            format!("0::/user.slice/user-1000.slice/session-3.scope/docker-{ID}.scope"),
            // Kubernetes runtimes only inside a pod slice at its place.
            format!("0::/kubepods.slice/cri-containerd-{ID}.scope"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod{uid}.slice/crio-{ID}.scope"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/extra.slice/kubepods-burstable-pod{uid}.slice/crio-{ID}.scope"),
            format!("0::/kubepods/{ID}"),
            format!("0::/kubepods/burstable/pod{UID}/nested/{ID}"),
        ];
        for path in spoofed {
            assert_eq!(parse(&format!("{path}\n")), None, "{path}");
        }
    }

    #[test]
    fn what_lies_below_a_containers_own_cgroup_is_that_container() {
        let text = format!("0::/system.slice/docker-{ID}.scope/init.scope\n");
        assert_eq!(
            parse(&text),
            expect(
                ContainerRuntime::Docker,
                false,
                ContainerSource::SystemdScope
            )
        );
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

    #[test]
    fn old_snapshots_without_a_source_still_load() {
        let c: Container =
            serde_json::from_str(&format!(r#"{{"runtime":"docker","id":"{ID}"}}"#)).unwrap();
        assert_eq!(c.source, ContainerSource::Unrecorded);
        let json = serde_json::to_string(&parse(&format!("0::/docker/{ID}\n")).unwrap()).unwrap();
        assert!(json.contains(r#""source":"cgroupfs_path""#), "{json}");
    }
}
