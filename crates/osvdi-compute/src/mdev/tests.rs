//! Tests of [`MdevInventory`] against copies of the fixture trees, with [`FakeKernel`] playing
//! the kernel's reaction to writes.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use uuid::Uuid;

use super::fake::FakeKernel;
use super::*;

const GVT: &str = "0000:00:02.0";
const GVT_INSTANCE: &str = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525";
const M60_A: &str = "0000:3d:00.0";
const M60_B: &str = "0000:3e:00.0";

/// A writable copy of `tests/fixtures/<name>` (symlinks kept as symlinks).
fn fixture(name: &str) -> TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    dir
}

fn copy_tree(src: &Path, dst: &Path) {
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else if kind.is_dir() {
            fs::create_dir(&to).unwrap();
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// An inventory over a copy of `name`, with the fake kernel reacting to writes.
fn setup(name: &str) -> (TempDir, MdevInventory) {
    let dir = fixture(name);
    let kernel = FakeKernel::new(dir.path());
    let inventory = MdevInventory::new(dir.path()).with_write_hook(kernel.hook());
    (dir, inventory)
}

fn available(inventory: &MdevInventory, parent: &str) -> Vec<(String, u32)> {
    let scan = inventory.scan().unwrap();
    scan.gpu(parent)
        .unwrap()
        .types
        .iter()
        .map(|t| (t.id.clone(), t.available_instances))
        .collect()
}

fn counts(inventory: &MdevInventory, parent: &str) -> Vec<u32> {
    available(inventory, parent)
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

fn type_dir(root: &Path, parent: &str, type_id: &str) -> PathBuf {
    root.join("class/mdev_bus")
        .join(parent)
        .join("mdev_supported_types")
        .join(type_id)
}

#[test]
fn scans_the_gvtg_fixture() {
    let (_dir, inventory) = setup("sysfs-gvtg");
    let scan = inventory.scan().unwrap();
    assert_eq!(scan.gpus.len(), 1);
    let gpu = &scan.gpus[0];
    assert_eq!(gpu.parent, GVT);
    assert_eq!(
        (gpu.vendor, gpu.device, gpu.single_type),
        (Vendor::Intel, 0x5912, false)
    );
    let ids: Vec<_> = gpu.types.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "i915-GVTg_V5_1",
            "i915-GVTg_V5_2",
            "i915-GVTg_V5_4",
            "i915-GVTg_V5_8"
        ]
    );
    assert_eq!(counts(&inventory, GVT), [0, 1, 3, 7]);
    let v54 = gpu.mdev_type("i915-GVTg_V5_4").unwrap();
    assert_eq!(v54.name, "GVTg_V5_4");
    assert_eq!(v54.device_api, "vfio-pci");
    assert_eq!(
        v54.description,
        "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4"
    );
    assert_eq!(
        gpu.instances,
        [MdevInstance {
            uuid: Uuid::parse_str(GVT_INSTANCE).unwrap(),
            type_id: "i915-GVTg_V5_4".into()
        }]
    );
    assert_eq!(gpu.active_type(), Some("i915-GVTg_V5_4"));
}

#[test]
fn scans_the_nvidia_fixture() {
    let (_dir, inventory) = setup("sysfs-nvidia");
    let scan = inventory.scan().unwrap();
    let parents: Vec<_> = scan.gpus.iter().map(|g| g.parent.as_str()).collect();
    assert_eq!(parents, [M60_A, M60_B]);
    for gpu in &scan.gpus {
        assert_eq!(
            (gpu.vendor, gpu.device, gpu.single_type),
            (Vendor::Nvidia, 0x13f2, true)
        );
        assert!(gpu.instances.is_empty());
        assert_eq!(gpu.active_type(), None);
        let names: Vec<_> = gpu
            .types
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("nvidia-11", "GRID M60-0B"),
                ("nvidia-12", "GRID M60-0Q"),
                ("nvidia-15", "GRID M60-1Q"),
                ("nvidia-18", "GRID M60-2Q"),
                ("nvidia-20", "GRID M60-4Q"),
                ("nvidia-22", "GRID M60-8Q"),
            ]
        );
        assert_eq!(
            gpu.mdev_type("nvidia-15").unwrap().description,
            "num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880, max_instance=8"
        );
    }
    assert_eq!(counts(&inventory, M60_A), [16, 16, 8, 4, 2, 1]);
}

#[test]
fn gvtg_hosts_two_types_on_one_gpu() {
    let (dir, inventory) = setup("sysfs-gvtg");
    let small = inventory.create(GVT, "i915-GVTg_V5_8").unwrap();
    let medium = inventory.create(GVT, "i915-GVTg_V5_4").unwrap();

    let scan = inventory.scan().unwrap();
    let gpu = scan.gpu(GVT).unwrap();
    let mut types: Vec<_> = gpu.instances.iter().map(|i| i.type_id.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        ["i915-GVTg_V5_4", "i915-GVTg_V5_4", "i915-GVTg_V5_8"]
    );
    assert_eq!(gpu.active_type(), None);
    assert_eq!(
        scan.instance(small)
            .map(|(g, i)| (g.parent.as_str(), i.type_id.as_str())),
        Some((GVT, "i915-GVTg_V5_8"))
    );
    // Low GM left: 448 - 64 - 128 = 256 MB; high: 2688 - 384 - 512 = 1792 MB.
    assert_eq!(counts(&inventory, GVT), [0, 1, 2, 4]);
    // The kernel's layout, seen through the links.
    let root = dir.path();
    let link = root.join("bus/mdev/devices").join(medium.to_string());
    assert_eq!(
        fs::read_to_string(link.join("mdev_type/name")).unwrap(),
        "GVTg_V5_4\n"
    );
    assert!(
        type_dir(root, GVT, "i915-GVTg_V5_8")
            .join("devices")
            .join(small.to_string())
            .join("remove")
            .exists()
    );
}

#[test]
fn nvidia_runs_one_type_per_gpu() {
    let (dir, inventory) = setup("sysfs-nvidia");
    let first = inventory.create(M60_A, "nvidia-11").unwrap();
    assert_eq!(counts(&inventory, M60_A), [15, 0, 0, 0, 0, 0]);

    let err = inventory.create(M60_A, "nvidia-18").unwrap_err();
    assert!(matches!(err, MdevError::TypeConflict { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "0000:3d:00.0 runs nvidia-11; it can host only nvidia-11 until its 1 instance(s) are removed"
    );
    // Refused before writing: nothing in `create`, no new instance.
    assert_eq!(
        fs::read_to_string(type_dir(dir.path(), M60_A, "nvidia-18").join("create")).unwrap(),
        ""
    );
    assert_eq!(
        inventory
            .scan()
            .unwrap()
            .gpu(M60_A)
            .unwrap()
            .instances
            .len(),
        1
    );

    // The other GPU is free to run another type.
    inventory.create(M60_B, "nvidia-18").unwrap();
    assert_eq!(
        inventory.scan().unwrap().gpu(M60_B).unwrap().active_type(),
        Some("nvidia-18")
    );

    inventory.remove(first).unwrap();
    assert_eq!(counts(&inventory, M60_A), [16, 16, 8, 4, 2, 1]);
    inventory.create(M60_A, "nvidia-18").unwrap();
    assert_eq!(
        inventory.scan().unwrap().gpu(M60_A).unwrap().active_type(),
        Some("nvidia-18")
    );
}

#[test]
fn refuses_once_a_type_is_exhausted() {
    let (_dir, inventory) = setup("sysfs-nvidia");
    inventory.create(M60_A, "nvidia-20").unwrap();
    inventory.create(M60_A, "nvidia-20").unwrap();
    assert_eq!(counts(&inventory, M60_A), [0; 6]);
    let err = inventory.create(M60_A, "nvidia-20").unwrap_err();
    assert!(matches!(err, MdevError::NoFreeInstance { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "No free nvidia-20 instance on 0000:3d:00.0"
    );

    let (_dir, gvt) = setup("sysfs-gvtg");
    gvt.create(GVT, "i915-GVTg_V5_2").unwrap();
    assert_eq!(
        gvt.create(GVT, "i915-GVTg_V5_2").unwrap_err().to_string(),
        "No free i915-GVTg_V5_2 instance on 0000:00:02.0"
    );
    assert_eq!(
        gvt.create(GVT, "i915-GVTg_V5_1").unwrap_err().to_string(),
        "No free i915-GVTg_V5_1 instance on 0000:00:02.0"
    );
}

#[test]
fn removes_an_existing_instance() {
    let (dir, inventory) = setup("sysfs-gvtg");
    let uuid = Uuid::parse_str(GVT_INSTANCE).unwrap();
    inventory.remove(uuid).unwrap();
    assert!(
        inventory
            .scan()
            .unwrap()
            .gpu(GVT)
            .unwrap()
            .instances
            .is_empty()
    );
    assert!(
        !dir.path()
            .join("devices/pci0000:00/0000:00:02.0")
            .join(GVT_INSTANCE)
            .exists()
    );
    // Low GM back to 576 MB, high to 3200 MB.
    assert_eq!(counts(&inventory, GVT), [1, 2, 4, 8]);
}

#[test]
fn remove_of_an_unknown_uuid_is_a_clear_error() {
    let (_dir, inventory) = setup("sysfs-gvtg");
    let uuid = Uuid::from_u128(42);
    let err = inventory.remove(uuid).unwrap_err();
    assert!(
        matches!(err, MdevError::UnknownInstance(u) if u == uuid),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "No mdev instance 00000000-0000-0000-0000-00000000002a; nothing to remove"
    );
}

#[test]
fn unknown_gpu_or_type_is_refused() {
    let (_dir, inventory) = setup("sysfs-nvidia");
    assert!(matches!(
        inventory.create("0000:99:00.0", "nvidia-11"),
        Err(MdevError::UnknownParent(_))
    ));
    let err = inventory.create(M60_A, "../../../x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "0000:3d:00.0 has no mdev type ../../../x; see the inventory for its types"
    );
}

#[test]
fn find_free_prefers_the_gpu_already_running_the_type() {
    let (_dir, inventory) = setup("sysfs-nvidia");
    // Both idle: the lower address.
    assert_eq!(
        inventory.find_free("nvidia-12").unwrap().as_deref(),
        Some(M60_A)
    );
    inventory.create(M60_B, "nvidia-12").unwrap();
    // Type affinity beats load and address.
    assert_eq!(
        inventory.find_free("nvidia-12").unwrap().as_deref(),
        Some(M60_B)
    );
    // Another type can go only to the idle GPU.
    assert_eq!(
        inventory.find_free("nvidia-15").unwrap().as_deref(),
        Some(M60_A)
    );
    // Both running the type: the less loaded.
    inventory.create(M60_A, "nvidia-12").unwrap();
    inventory.create(M60_A, "nvidia-12").unwrap();
    assert_eq!(
        inventory.find_free("nvidia-12").unwrap().as_deref(),
        Some(M60_B)
    );
    assert_eq!(inventory.find_free("nvidia-15").unwrap(), None);
    assert_eq!(inventory.find_free("nvidia-404").unwrap(), None);
}

#[test]
fn allocate_fills_gpus_then_says_no_capacity() {
    let (_dir, inventory) = setup("sysfs-nvidia");
    let (first, _) = inventory.allocate("nvidia-22").unwrap();
    let (second, _) = inventory.allocate("nvidia-22").unwrap();
    assert_eq!((first.as_str(), second.as_str()), (M60_A, M60_B));
    let err = inventory.allocate("nvidia-22").unwrap_err();
    assert_eq!(
        err.to_string(),
        "No GPU can host another nvidia-22 instance; free one or choose another type"
    );
}

#[test]
fn a_root_without_mdev_bus_is_an_empty_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = MdevInventory::new(dir.path());
    assert_eq!(inventory.scan().unwrap(), Inventory::default());
    assert_eq!(inventory.find_free("nvidia-11").unwrap(), None);
}

#[test]
fn create_fails_when_no_instance_appears() {
    // Plain files and no kernel: the write lands but nothing appears.
    let dir = fixture("sysfs-nvidia");
    let inventory = MdevInventory::new(dir.path());
    let err = inventory.create(M60_A, "nvidia-11").unwrap_err();
    assert!(matches!(err, MdevError::NotCreated { .. }), "{err:?}");
}

#[test]
fn a_refused_write_is_reported() {
    let dir = fixture("sysfs-gvtg");
    let inventory = MdevInventory::new(dir.path())
        .with_write_hook(Box::new(|_| Err(io::Error::from_raw_os_error(16)))); // EBUSY
    let err = inventory
        .remove(Uuid::parse_str(GVT_INSTANCE).unwrap())
        .unwrap_err();
    assert!(matches!(err, MdevError::Write { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("The kernel refused the write to "),
        "{err}"
    );
}

#[test]
fn a_malformed_attribute_is_a_parse_error() {
    let (dir, inventory) = setup("sysfs-nvidia");
    fs::write(
        type_dir(dir.path(), M60_A, "nvidia-11").join("available_instances"),
        "lots\n",
    )
    .unwrap();
    assert!(matches!(inventory.scan(), Err(MdevError::Parse { value, .. }) if value == "lots"));
}
