"""osvdi test bed: a Nova virt driver that fakes the guests but not the host model.

Installed by osbed.sh as nova/virt/osbed_fake_driver.py (Nova loads drivers only from the
nova.virt package) and selected with `compute_driver = osbed_fake_driver.OsbedFakeDriver`.

What it adds to nova's own FakeDriverWithoutFakeNodes:
- A host profile chosen by `[DEFAULT] host`: VCPU/MEMORY_MB/DISK_GB of the root provider and
  nested physical-GPU child providers carrying VGPU inventory and one CUSTOM_VGPU_* trait
  each, in the layout of the libvirt driver's mdev support (`<node>_pci_0000_81_00_0`).
- Guest state kept in `<state_path>/osbed-guests.json`, so that a restarted nova-compute still
  knows its servers and their power state (running, shut off, suspended, paused) and Nova's
  power-state sync does not turn them off.
- Real consoles: get_vnc_console and get_spice_console start (once per server, lazily) a QEMU
  with no disk, stopped before its first instruction (-S), whose VNC and SPICE servers listen
  on 127.0.0.1; Nova's novncproxy and spicehtml5proxy then proxy real RFB and SPICE
  sessions. The QEMU is killed when the server is deleted, shelved-offloaded or powered off.
  Its pid file lives in `<state_path>/osbed-vnc/`.
- Snapshots (and so shelve) upload a small raw image, so the snapshot image becomes active.
"""

import io
import json
import os
import signal
import socket
import subprocess
import threading

import os_traits
from oslo_log import log as logging

import nova.conf
from nova.compute import power_state
from nova.compute import task_states
from nova.console import type as ctype
from nova import exception
from nova.virt import fake

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# host name -> (vcpus, memory_mb, disk_gb, {pci address: (vGPU type trait, VGPU units)})
PROFILES = {
    'gpu-1': (16, 65536, 500, {
        'pci_0000_81_00_0': ('CUSTOM_VGPU_NVIDIA_GRID_M60_0B', 4),
        'pci_0000_82_00_0': ('CUSTOM_VGPU_NVIDIA_GRID_M60_1B', 4),
    }),
    'cpu-1': (8, 32768, 200, {}),
}
DEFAULT_PROFILE = (8, 32768, 200, {})

QEMU = os.environ.get('OSVDI_OSBED_QEMU', 'qemu-system-x86_64')
# VNC displays 200..599 -> TCP 6100..6499 (keeps clear of novncproxy's 6080); the SPICE
# server of display N listens on SPICE_BASE + N (6500..6899).
VNC_DISPLAYS = range(200, 600)
SPICE_BASE = 6300


class OsbedFakeDriver(fake.FakeDriverWithoutFakeNodes):

    def __init__(self, virtapi, read_only=False):
        vcpus, mem, disk, pgpus = PROFILES.get(CONF.host, DEFAULT_PROFILE)
        # FakeDriver reads these class attributes in __init__ and update_provider_tree.
        self.vcpus, self.memory_mb, self.local_gb = vcpus, mem, disk
        self.pgpus = pgpus
        super().__init__(virtapi, read_only)
        self._state_file = os.path.join(CONF.state_path, 'osbed-guests.json')
        self._vnc_dir = os.path.join(CONF.state_path, 'osbed-vnc')
        os.makedirs(self._vnc_dir, exist_ok=True)
        self._flavors = {}  # uuid -> (vcpus, memory_mb, root_gb), to release on destroy
        self._console_lock = threading.Lock()
        self._load()

    # --- persistence -------------------------------------------------------------------------

    def _load(self):
        try:
            with open(self._state_file) as f:
                saved = json.load(f)
        except FileNotFoundError:
            return
        for uuid, g in saved.items():
            self.instances[uuid] = fake.FakeInstance(g['name'], g['state'], uuid)
            self.resources.claim(vcpus=g['vcpus'], mem=g['mem'], disk=g['disk'])
            self._flavors[uuid] = (g['vcpus'], g['mem'], g['disk'])
        LOG.info('osbed: restored %d guest(s) from %s', len(saved), self._state_file)

    def _save(self):
        out = {}
        for uuid, i in self.instances.items():
            vcpus, mem, disk = self._flavors.get(uuid, (0, 0, 0))
            out[uuid] = {'name': i.name, 'state': i.state, 'vcpus': vcpus, 'mem': mem,
                         'disk': disk}
        tmp = self._state_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(out, f)
        os.replace(tmp, self._state_file)

    def _set_state(self, instance, state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        self.instances[instance.uuid].state = state
        self._save()

    # --- guest life cycle ----------------------------------------------------------------------

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info=network_info,
                      block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
        f = instance.flavor
        self._flavors[instance.uuid] = (f.vcpus, f.memory_mb, f.root_gb)
        self._save()

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._stop_console(instance.uuid)
        super().destroy(context, instance, network_info, block_device_info=block_device_info,
                        destroy_disks=destroy_disks, destroy_secrets=destroy_secrets)
        self._flavors.pop(instance.uuid, None)
        self._save()

    def power_off(self, instance, timeout=0, retry_interval=0):
        self._stop_console(instance.uuid)
        self._set_state(instance, power_state.SHUTDOWN)

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        self._set_state(instance, power_state.RUNNING)

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        super().reboot(context, instance, network_info, reboot_type,
                       block_device_info=block_device_info,
                       bad_volumes_callback=bad_volumes_callback, accel_info=accel_info,
                       share_info=share_info)
        self._save()

    def suspend(self, context, instance):
        self._set_state(instance, power_state.SUSPENDED)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._set_state(instance, power_state.RUNNING)

    def pause(self, instance):
        self._set_state(instance, power_state.PAUSED)

    def unpause(self, instance):
        self._set_state(instance, power_state.RUNNING)

    def unrescue(self, context, instance):
        self._set_state(instance, power_state.RUNNING)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        from nova.image import glance
        meta = {'disk_format': 'raw', 'container_format': 'bare'}
        glance.API().update(context, image_id, meta, data=io.BytesIO(b'osbed snapshot\n' * 64),
                            purge_props=False)

    # --- host model ------------------------------------------------------------------------------

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        super().update_provider_tree(provider_tree, nodename, allocations=allocations)
        for pci, (trait, total) in self.pgpus.items():
            name = '%s_%s' % (nodename, pci)
            if not provider_tree.exists(name):
                provider_tree.new_child(name=name, parent=nodename)
            provider_tree.update_inventory(name, {
                'VGPU': {'total': total, 'reserved': 0, 'min_unit': 1, 'max_unit': total,
                         'step_size': 1, 'allocation_ratio': 1.0}})
            provider_tree.update_traits(name, [trait, os_traits.OWNER_NOVA])

    # --- consoles --------------------------------------------------------------------------------

    def get_vnc_console(self, context, instance):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        vnc, _ = self._ensure_console(instance.uuid)
        return ctype.ConsoleVNC(host='127.0.0.1', port=vnc)

    def get_spice_console(self, context, instance):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        _, spice = self._ensure_console(instance.uuid)
        return ctype.ConsoleSpice(host='127.0.0.1', port=spice, tlsPort=None)

    def _pidfile(self, uuid):
        return os.path.join(self._vnc_dir, uuid + '.pid')

    def _running_console(self, uuid):
        """(pid, vnc port, spice port) of this server's QEMU if it still runs, else None."""
        try:
            with open(self._pidfile(uuid)) as f:
                pid, vnc, spice = (int(x) for x in f.read().split())
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                if uuid.encode() not in f.read():
                    return None
            return pid, vnc, spice
        except (OSError, ValueError):
            return None

    @staticmethod
    def _free(port):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
                return True
            except OSError:
                return False

    def _ensure_console(self, uuid):
        """(vnc port, spice port) of this server's console QEMU, started if needed."""
        with self._console_lock:
            running = self._running_console(uuid)
            if running:
                return running[1:]
            self._stop_console(uuid)  # e.g. a pid file from an older driver
            log = os.path.join(self._vnc_dir, uuid + '.log')
            qemu_pidfile = os.path.join(self._vnc_dir, uuid + '.qemu-pid')
            for display in VNC_DISPLAYS:
                vnc, spice = 5900 + display, SPICE_BASE + display
                if not (self._free(vnc) and self._free(spice)):
                    continue
                # -daemonize: QEMU returns once its servers listen, and is not our child
                # (nothing to reap, survives a nova-compute restart; osbed.sh stop kills it).
                with open(log, 'ab') as out:
                    rc = subprocess.run(
                        [QEMU, '-name', 'osbed-' + uuid, '-machine', 'pc',
                         '-accel', 'tcg,tb-size=8', '-m', '32', '-nodefaults', '-vga', 'std',
                         '-S', '-display', 'none',
                         '-vnc', '127.0.0.1:%d,share=force-shared' % display,
                         '-spice', 'addr=127.0.0.1,port=%d,disable-ticketing=on' % spice,
                         '-daemonize', '-pidfile', qemu_pidfile],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                        timeout=30).returncode
                if rc != 0:
                    continue  # a port was taken between the check and QEMU's bind
                with open(qemu_pidfile) as f:
                    pid = int(f.read().split()[0])
                with open(self._pidfile(uuid), 'w') as f:
                    f.write('%d %d %d\n' % (pid, vnc, spice))
                LOG.info('osbed: console of %s: VNC 127.0.0.1:%d, SPICE 127.0.0.1:%d '
                         '(qemu pid %d)', uuid, vnc, spice, pid)
                return vnc, spice
            raise exception.ConsoleTypeUnavailable(console_type='vnc')

    def _stop_console(self, uuid):
        try:
            with open(self._pidfile(uuid)) as f:
                pid = int(f.read().split()[0])
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                if uuid.encode() in f.read():
                    os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass
        try:
            os.unlink(self._pidfile(uuid))
        except OSError:
            pass
