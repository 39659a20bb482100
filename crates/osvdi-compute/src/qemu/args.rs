//! The `qemu-system-x86_64` command line of a desktop, as a pure function of a launch plan.

use std::path::Path;

use super::config::AccelKind;
use super::layout::{DesktopDir, DesktopRecord};

/// Everything that decides a desktop's command line.
#[derive(Debug, Clone)]
pub(crate) struct LaunchPlan<'a> {
    pub dir: &'a DesktopDir,
    pub record: &'a DesktopRecord,
    pub accel: AccelKind,
    /// The TCP port for SPICE on 127.0.0.1, when the desktop offers SPICE.
    pub spice_port: Option<u16>,
    /// Start paused, waiting for `migrate-incoming` (resume).
    pub incoming: bool,
}

/// QEMU option values separate fields with `,`; a literal comma is written twice.
fn esc(value: &str) -> String {
    value.replace(',', ",,")
}

fn path(p: &Path) -> String {
    esc(DesktopDir::path_str(p))
}

/// The arguments, without the program. Device arguments are identical for a fresh start and
/// a resume: only `-S -incoming defer` and the SPICE port differ, which migration allows.
pub(crate) fn qemu_args(plan: &LaunchPlan<'_>) -> Vec<String> {
    let dir = plan.dir;
    let record = plan.record;
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
    // Named threads ("CPU 0/KVM", "vnc_worker"...) let benches tell guest from display CPU.
    push(&[
        "-name",
        &format!("guest={},debug-threads=on", esc(&record.display_name())),
    ]);
    push(&["-uuid", &dir.id.to_string()]);
    push(&["-no-user-config", "-nodefaults"]);
    push(&["-machine", "q35", "-accel", plan.accel.as_str()]);
    if plan.accel == AccelKind::Kvm {
        push(&["-cpu", "host"]);
    }
    push(&[
        "-smp",
        &record.vcpus.to_string(),
        "-m",
        &format!("{}M", record.memory_mb),
    ]);
    push(&[
        "-drive",
        &format!("file={},if=virtio,format=qcow2", path(&dir.disk())),
    ]);
    push(&["-nic", "user,model=virtio-net-pci"]);
    push(&["-vga", "std", "-display", "none"]);
    push(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", path(&dir.qmp())),
    ]);
    push(&["-vnc", &format!("unix:{}", path(&dir.vnc()))]);
    push(&[
        "-chardev",
        &format!(
            "socket,id=ser0,path={},server=on,wait=off,logfile={},logappend=on",
            path(&dir.serial_sock()),
            path(&dir.serial_log())
        ),
    ]);
    push(&["-serial", "chardev:ser0"]);
    if let Some(port) = plan.spice_port {
        // Ticketing on and no password yet: nobody connects before set_spice_ticket.
        push(&[
            "-spice",
            &format!("addr=127.0.0.1,port={port},disable-ticketing=off"),
        ]);
    }
    if let Some(device) = &record.vgpu_device {
        push(&[
            "-device",
            &format!("vfio-pci,sysfsdev={},display=on", path(device)),
        ]);
    }
    push(&["-msg", "timestamp=on", "-D", &path(&dir.qemu_log())]);
    push(&["-daemonize", "-pidfile", &path(&dir.pid())]);
    if plan.incoming {
        push(&["-S", "-incoming", "defer"]);
    }
    args
}

/// The shell command of QEMU's `exec:` migration that writes the state file. Paths were
/// checked to contain no `'`, so single quotes quote them completely.
pub(crate) fn save_uri(dir: &DesktopDir) -> String {
    format!("exec:cat > '{}'", DesktopDir::path_str(&dir.state_tmp()))
}

pub(crate) fn load_uri(dir: &DesktopDir) -> String {
    format!("exec:cat '{}'", DesktopDir::path_str(&dir.state()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use osvdi_model::{DesktopId, ImageFormat};

    use super::*;
    use crate::{DesktopSpec, ReadyProbe};

    fn record(id: DesktopId) -> DesktopRecord {
        DesktopRecord::from_spec(&DesktopSpec {
            id,
            name: "Lab, room 2".into(),
            vcpus: 2,
            memory_mb: 1024,
            disk_gb: 10,
            image: "/img/t.qcow2".into(),
            image_format: ImageFormat::Qcow2,
            vgpu_type: None,
            vgpu_device: None,
            spice: false,
            ready: ReadyProbe::After(Duration::from_secs(1)),
        })
    }

    fn value_of<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn fresh_start() {
        let id = DesktopId::random();
        let dir = DesktopDir::new(Path::new("/run/d"), id);
        let record = record(id);
        let plan = LaunchPlan {
            dir: &dir,
            record: &record,
            accel: AccelKind::Tcg,
            spice_port: None,
            incoming: false,
        };
        let args = qemu_args(&plan);
        assert_eq!(
            value_of(&args, "-name"),
            ["guest=Lab,, room 2,debug-threads=on"]
        );
        assert_eq!(value_of(&args, "-accel"), ["tcg"]);
        assert!(value_of(&args, "-cpu").is_empty());
        assert_eq!(value_of(&args, "-m"), ["1024M"]);
        assert_eq!(
            value_of(&args, "-drive"),
            [format!(
                "file=/run/d/{id}/disk.qcow2,if=virtio,format=qcow2"
            )]
        );
        assert_eq!(
            value_of(&args, "-vnc"),
            [format!("unix:/run/d/{id}/vnc.sock")]
        );
        assert_eq!(
            value_of(&args, "-pidfile"),
            [format!("/run/d/{id}/qemu.pid")]
        );
        assert!(value_of(&args, "-spice").is_empty());
        assert!(!args.iter().any(|a| a == "-incoming"));
    }

    #[test]
    fn resume_differs_only_by_incoming_and_spice_port() {
        let id = DesktopId::random();
        let dir = DesktopDir::new(Path::new("/run/d"), id);
        let mut record = record(id);
        record.spice = true;
        record.vgpu_device =
            Some("/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001".into());
        let start = LaunchPlan {
            dir: &dir,
            record: &record,
            accel: AccelKind::Kvm,
            spice_port: Some(5900),
            incoming: false,
        };
        let resume = LaunchPlan {
            spice_port: Some(5901),
            incoming: true,
            ..start.clone()
        };
        let (a, b) = (qemu_args(&start), qemu_args(&resume));
        assert_eq!(value_of(&a, "-cpu"), ["host"]);
        assert_eq!(
            value_of(&a, "-spice"),
            ["addr=127.0.0.1,port=5900,disable-ticketing=off"]
        );
        assert_eq!(
            value_of(&a, "-device"),
            [
                "vfio-pci,sysfsdev=/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001,display=on"
            ]
        );
        let strip = |args: &[String]| -> Vec<String> {
            args.iter()
                .filter(|s| {
                    !s.contains("port=") && *s != "-S" && *s != "-incoming" && *s != "defer"
                })
                .cloned()
                .collect()
        };
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(b[b.len() - 3..], ["-S", "-incoming", "defer"]);
    }

    #[test]
    fn migration_uris_quote_paths() {
        let id = DesktopId::random();
        let dir = DesktopDir::new(Path::new("/run/my d"), id);
        assert_eq!(
            save_uri(&dir),
            format!("exec:cat > '/run/my d/{id}/state.bin.tmp'")
        );
        assert_eq!(
            load_uri(&dir),
            format!("exec:cat '/run/my d/{id}/state.bin'")
        );
    }
}
