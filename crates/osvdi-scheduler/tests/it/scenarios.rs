//! Data-driven scenarios: a table in, decisions and host use out, compared with snapshots
//! (`UPDATE_EXPECT=1 cargo test -p osvdi-scheduler --test it` rewrites them).

use expect_test::{Expect, expect};

use crate::table::run;

fn check(input: &str, expected: Expect) {
    expected.assert_eq(&run(input));
}

#[test]
fn pack_fills_one_host_spread_shares() {
    check(
        r"
        host a site=pack cpu=8 mem=16384 disk=100
        host b site=pack cpu=8 mem=16384 disk=100
        host c site=spread cpu=8 mem=16384 disk=100
        host d site=spread cpu=8 mem=16384 disk=100
        strategy spread spread
        place p1 cpu=2 traits=site:pack
        place p2 cpu=2 traits=site:pack
        place p3 cpu=2 traits=site:pack
        place s1 cpu=2 traits=site:spread
        place s2 cpu=2 traits=site:spread
        place s3 cpu=2 traits=site:spread
        ",
        expect![[r#"
            p1 -> a
            p2 -> a
            p3 -> a
            s1 -> c
            s2 -> d
            s3 -> c
            --
            a: cpu 6/8 mem 3072/16384 disk 30/100
            b: cpu 0/8 mem 0/16384 disk 0/100
            c: cpu 4/8 mem 2048/16384 disk 20/100
            d: cpu 2/8 mem 1024/16384 disk 10/100"#]],
    );
}

#[test]
fn vgpu_types_one_per_gpu_and_affinity() {
    check(
        r"
        host g1 cpu=32 mem=131072 disk=1000 traits=gpu
        gpu g1 single nvidia-35:4 nvidia-36:2
        gpu g1 single nvidia-35:4 nvidia-36:2
        host g2 cpu=32 mem=131072 disk=1000 traits=gpu
        gpu g2 single nvidia-35:4 nvidia-36:2
        # g2 is busier, but g1 already runs nvidia-36: affinity wins.
        alloc x g2 cpu=16 mem=4096
        alloc y g1 cpu=1 gpu=1:nvidia-36
        place a cpu=2 vgpu=nvidia-36
        place b cpu=2 vgpu=nvidia-35
        place c cpu=2 vgpu=nvidia-35
        place d cpu=2 vgpu=nvidia-36
        place e cpu=2 vgpu=nvidia-36
        place f cpu=2 vgpu=nvidia-36
        place g cpu=2 vgpu=nvidia-36
        place h cpu=2 vgpu=nvidia-40
        ",
        expect![[r#"
            a -> g1 gpu1
            b -> g2 gpu0
            c -> g2 gpu0
            d -> g1 gpu0
            e -> g1 gpu0
            f -> refused: No host fits 2 vCPU, 1024 MB, 10 GB + nvidia-36: no GPU with a free nvidia-36 instance; 1 GPU runs nvidia-35; 2 GPUs have all nvidia-36 instances taken
            g -> refused: No host fits 2 vCPU, 1024 MB, 10 GB + nvidia-36: no GPU with a free nvidia-36 instance; 1 GPU runs nvidia-35; 2 GPUs have all nvidia-36 instances taken
            h -> refused: No host fits 2 vCPU, 1024 MB, 10 GB + nvidia-40: no GPU offers nvidia-40
            --
            g1: cpu 7/32 mem 4096/131072 disk 40/1000 | gpu0 nvidia-36x2 | gpu1 nvidia-36x2
            g2: cpu 20/32 mem 6144/131072 disk 30/1000 | gpu0 nvidia-35x2"#]],
    );
}

#[test]
fn refusal_names_what_is_missing() {
    check(
        r"
        host g1 cpu=8 mem=16384 disk=100 traits=gpu
        gpu g1 single nvidia-35:4 nvidia-36:2
        gpu g1 single nvidia-35:4 nvidia-36:2
        alloc x g1 cpu=1 gpu=0:nvidia-36
        alloc y g1 cpu=1 gpu=1:nvidia-36
        place a cpu=1 vgpu=nvidia-35
        place b cpu=16 mem=1024
        place c cpu=1 traits=data:cryo-em
        ",
        expect![[r#"
            a -> refused: No host fits 1 vCPU, 1024 MB, 10 GB + nvidia-35: no GPU with a free nvidia-35 instance; 2 GPUs run nvidia-36
            b -> refused: No host fits 16 vCPU, 1024 MB, 10 GB: 1 host lacks vCPUs
            c -> refused: No host fits 1 vCPU, 1024 MB, 10 GB: 1 host lacks traits data:cryo-em
            --
            g1: cpu 2/8 mem 2048/16384 disk 20/100 | gpu0 nvidia-36x1 | gpu1 nvidia-36x1"#]],
    );
}

#[test]
fn mixed_gpus_share_a_budget() {
    check(
        r"
        host i1 cpu=32 mem=65536 disk=500
        gpu i1 mixed 8 gvtg-4:2:4 gvtg-8:4:2
        place a vgpu=gvtg-4
        place b vgpu=gvtg-8
        place c vgpu=gvtg-8
        place d vgpu=gvtg-4
        place e vgpu=gvtg-8
        ",
        expect![[r#"
            a -> i1 gpu0
            b -> i1 gpu0
            c -> i1 gpu0
            d -> refused: No host fits 1 vCPU, 1024 MB, 10 GB + gvtg-4: no GPU with a free gvtg-4 instance; 1 mixed GPU has no budget left
            e -> refused: No host fits 1 vCPU, 1024 MB, 10 GB + gvtg-8: no GPU with a free gvtg-8 instance; 1 mixed GPU has no budget left
            --
            i1: cpu 3/32 mem 3072/65536 disk 30/500 | gpu0 gvtg-4x1+gvtg-8x2"#]],
    );
}

#[test]
fn courses_are_admitted_beside_each_other() {
    check(
        r"
        zone 60
        host a cpu=16 mem=65536 disk=1000
        host b cpu=16 mem=65536 disk=1000
        # Tuesdays and Thursdays in March, not on the 11th: 7 slots of 2 x 8 = 16 vCPUs.
        course linux group=l count=8 cpu=2 weekly=2025-03-01..2025-03-31 days=tue,thu at=10:00 minutes=120 except=2025-03-11
        # Overlaps Tuesday 10:00-12:00 by an hour: 20 more vCPUs is too many.
        course extra group=e count=5 cpu=4 once=2025-03-18T11:00..2025-03-18T13:00
        # On the 11th there is room.
        course holiday group=e count=4 cpu=4 once=2025-03-11T11:00..2025-03-11T13:00
        # Right after a slot ends: fine.
        course after group=e count=16 cpu=2 once=2025-03-18T12:00..2025-03-18T13:00
        ",
        expect![[r#"
            course linux: admitted, 7 slots
            course extra: refused: Course extra does not fit in slot 0 (2025-03-18 11:00 to 2025-03-18 13:00): at 2025-03-18 11:00 a desktop of linux#3 does not fit: 11 of 13 reserved desktops placed (active: linux#3, extra#0); No host fits 2 vCPU, 1024 MB, 10 GB: 2 hosts lack vCPUs
            course holiday: admitted, 1 slots
            course after: admitted, 1 slots
            --
            a: cpu 0/16 mem 0/65536 disk 0/1000
            b: cpu 0/16 mem 0/65536 disk 0/1000"#]],
    );
}

#[test]
fn reserved_desktops_are_planned_for_their_whole_slot() {
    // Each segment's union fits two 8-vCPU hosts. Without migration it still fits, but only
    // if r1's two desktops share host b from 09:00, so that a is whole for r2 at 10:00. The
    // members land where the plan put them, and an on-demand desktop on a is cut at 10:00.
    check(
        r"
        zone 0
        host a cpu=8 mem=65536 disk=1000
        host b cpu=8 mem=65536 disk=1000
        course r0 group=g0 template=t0 count=1 cpu=4 once=2025-03-10T08:00..2025-03-10T10:00
        course r1 group=g1 template=t1 count=2 cpu=4 once=2025-03-10T09:00..2025-03-10T12:00
        course r2 group=g2 template=t2 count=1 cpu=8 once=2025-03-10T10:00..2025-03-10T11:00
        # Would need a whole host from 10:30, while r1 and r2 fill both: no.
        course r3 group=g3 template=t3 count=1 cpu=8 once=2025-03-10T10:30..2025-03-10T11:30
        ask m0 at=2025-03-10T08:05 groups=g0 template=t0 cpu=4
        ask m1 at=2025-03-10T09:01 groups=g1 template=t1 cpu=4
        ask o at=2025-03-10T09:02 cpu=4 end=2025-03-10T10:30
        ask m2 at=2025-03-10T09:03 groups=g1 template=t1 cpu=4
        ask m3 at=2025-03-10T10:00 groups=g2 template=t2 cpu=8
        ",
        expect![[r#"
            course r0: admitted, 1 slots
            course r1: admitted, 1 slots
            course r2: admitted, 1 slots
            course r3: refused: Course r3 does not fit in slot 0 (2025-03-10 10:30 to 2025-03-10 11:30): at 2025-03-10 10:30 UTC a desktop of r1#0 does not fit: 3 of 5 reserved desktops placed (active: r1#0, r2#0, r3#0); No host fits 4 vCPU, 1024 MB, 10 GB: 2 hosts lack vCPUs
            ask m0 @ 2025-03-10 08:05: admitted on a from r0#0 until 2025-03-10 10:00
            ask m1 @ 2025-03-10 09:01: admitted on b from r1#0 until 2025-03-10 12:00
            ask o @ 2025-03-10 09:02: shortened on a until 2025-03-10 10:00 (r2#0 needs the room)
            ask m2 @ 2025-03-10 09:03: admitted on b from r1#0 until 2025-03-10 12:00
            ask m3 @ 2025-03-10 10:00: admitted on a from r2#0 until 2025-03-10 11:00
            -- running at 2025-03-10 10:00
            a: cpu 8/8 mem 1024/65536 disk 10/1000
            b: cpu 8/8 mem 2048/65536 disk 20/1000"#]],
    );
}

#[test]
fn on_demand_desktops_yield_to_a_course() {
    check(
        r"
        zone 60
        host a cpu=8 mem=65536 disk=1000
        host b cpu=8 mem=65536 disk=1000
        course c group=students count=3 cpu=4 once=2025-03-10T10:00..2025-03-10T12:00
        ask x at=2025-03-10T08:00 cpu=4 end=2025-03-10T13:00
        ask y at=2025-03-10T08:30 cpu=4
        ask z at=2025-03-10T10:30 cpu=1 end=2025-03-10T11:00
        covered at=2025-03-10T10:30 groups=students
        ask m1 at=2025-03-10T10:30 cpu=4 groups=students
        ask m2 at=2025-03-10T10:31 cpu=4 groups=students
        ask m3 at=2025-03-10T10:32 cpu=4 groups=students
        covered at=2025-03-10T10:33 groups=students
        ask m4 at=2025-03-10T10:33 cpu=4 groups=students
        check at=2025-03-10T10:34
        ask w at=2025-03-10T12:00 cpu=4
        ",
        expect![[r#"
            course c: admitted, 1 slots
            ask x @ 2025-03-10 08:00: admitted on a until 2025-03-10 13:00
            ask y @ 2025-03-10 08:30: shortened on a until 2025-03-10 10:00 (c#0 needs the room)
            ask z @ 2025-03-10 10:30: refused: The room is reserved: at 2025-03-10 09:30 UTC a desktop of c#0 does not fit: 2 of 3 reserved desktops placed (active: c#0); No host fits 4 vCPU, 1024 MB, 10 GB: 2 hosts lack vCPUs
            covered @ 2025-03-10 10:30: c#0
            ask m1 @ 2025-03-10 10:30: admitted on a from c#0 until 2025-03-10 12:00
            ask m2 @ 2025-03-10 10:31: admitted on b from c#0 until 2025-03-10 12:00
            ask m3 @ 2025-03-10 10:32: admitted on b from c#0 until 2025-03-10 12:00
            covered @ 2025-03-10 10:33: none
            ask m4 @ 2025-03-10 10:33: refused: No host fits 4 vCPU, 1024 MB, 10 GB: 2 hosts lack vCPUs
            check @ 2025-03-10 10:34: ok
            ask w @ 2025-03-10 12:00: admitted on a open-ended
            -- running at 2025-03-10 12:00
            a: cpu 8/8 mem 2048/65536 disk 20/1000
            b: cpu 0/8 mem 0/65536 disk 0/1000"#]],
    );
}

#[test]
fn an_overrun_breaks_a_reservation_and_the_check_says_so() {
    check(
        r"
        zone 0
        host a cpu=8 mem=65536 disk=1000
        course c group=g count=2 cpu=4 once=2025-03-10T10:00..2025-03-10T12:00
        # Recorded as ending before the course, but still running at 10:00 (it overran).
        alloc late a cpu=4 end=2025-03-10T10:30
        check at=2025-03-10T10:00
        check at=2025-03-10T10:30
        ",
        expect![[r#"
            course c: admitted, 1 slots
            check @ 2025-03-10 10:00: at 2025-03-10 10:00 UTC a desktop of c#0 does not fit: 1 of 2 reserved desktops placed (active: c#0); No host fits 4 vCPU, 1024 MB, 10 GB: 1 host lacks vCPUs
            check @ 2025-03-10 10:30: ok
            -- running at 2025-03-10 10:30
            a: cpu 0/8 mem 0/65536 disk 0/1000"#]],
    );
}
