//! A tiny language for scheduler scenarios: hosts, GPUs, allocations and requests in, one
//! line per decision out (see `run` for the commands).

use std::collections::BTreeSet;

use osvdi_scheduler::{
    Allocation, Calendar, Course, Date, Decision, DesktopRequest, Gpu, GpuSlot, Host, Inventory,
    OnDemand, PlaceOptions, Resources, Schedule, Slot, SlotRef, Strategy, UnixMillis, Usage,
    Weekly, admit_course, admit_on_demand, check_at, covering_reservation, format_local, place,
};

/// `key=value` words after the command and its name.
struct Args<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Args<'a> {
    fn parse(words: &[&'a str]) -> Self {
        Args(
            words
                .iter()
                .map(|w| {
                    w.split_once('=')
                        .unwrap_or_else(|| panic!("not key=value: {w}"))
                })
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&'a str> {
        self.0.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> T {
        self.get(k).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| panic!("bad number {k}={v}"))
        })
    }
    fn list(&self, k: &str) -> Vec<&'a str> {
        self.get(k)
            .map(|v| v.split(',').collect())
            .unwrap_or_default()
    }
    fn resources(&self) -> Resources {
        Resources::new(
            self.num("cpu", 1),
            self.num("mem", 1024),
            self.num("disk", 10),
        )
    }
    fn request(&self) -> DesktopRequest {
        let mut r = DesktopRequest::new(self.get("template").unwrap_or("t"), self.resources());
        r.vgpu = self.get("vgpu").map(Into::into);
        r.traits = self.list("traits").into_iter().map(String::from).collect();
        r
    }
}

/// Parses "YYYY-MM-DDTHH:MM" in a zone `offset` minutes ahead of UTC.
fn time(s: &str, offset: i32) -> UnixMillis {
    let (d, hm) = s.split_once('T').expect("YYYY-MM-DDTHH:MM");
    let date: Date = d.parse().expect("date");
    date.at(minute(hm), offset)
}

fn minute(hm: &str) -> u32 {
    let (h, m) = hm.split_once(':').expect("HH:MM");
    h.parse::<u32>().expect("hour") * 60 + m.parse::<u32>().expect("minute")
}

#[derive(Default)]
struct State {
    hosts: Vec<Host>,
    strategies: Vec<(String, Strategy)>,
    inventory: Option<Inventory>,
    allocations: Vec<Allocation>,
    calendar: Calendar,
    offset: i32,
    /// The time of the latest timed command: the summary shows what runs then.
    now: Option<UnixMillis>,
    out: Vec<String>,
}

impl State {
    fn inv(&mut self) -> &Inventory {
        if self.inventory.is_none() {
            let mut inv = Inventory::new(std::mem::take(&mut self.hosts)).expect("inventory");
            for (site, s) in &self.strategies {
                inv = inv.with_strategy(site.clone(), *s);
            }
            self.inventory = Some(inv);
        }
        self.inventory.as_ref().expect("just built")
    }

    fn local(&self, t: UnixMillis) -> String {
        format_local(t, self.offset)
    }

    fn until(&self, end: Option<UnixMillis>) -> String {
        end.map_or("open-ended".to_owned(), |e| {
            format!("until {}", self.local(e))
        })
    }
}

/// Runs a scenario and returns what happened, one line per decision, then the use of every
/// host (at the time of the last timed command, if any). Commands (one per line, `#` starts a comment):
///
/// ```text
/// zone 60                                     times below are at UTC+60 min
/// host NAME site=S cpu=N mem=MB disk=GB traits=a,b
/// gpu HOST single TYPE:MAX ...                a one-type (NVIDIA) GPU
/// gpu HOST mixed BUDGET TYPE:MAX:WEIGHT ...   a mixed (GVT-g) GPU
/// strategy SITE pack|spread
/// alloc DESKTOP HOST cpu= mem= disk= gpu=INDEX:TYPE end=TIME slot=COURSE#N
/// place DESKTOP cpu= mem= disk= vgpu= traits=  placed now, kept as an allocation
/// course ID group=G count=N cpu= ... once=TIME..TIME
/// course ID group=G count=N cpu= ... weekly=DATE..DATE days=tue,thu at=HH:MM minutes=N except=DATE,..
/// ask DESKTOP at=TIME end=TIME groups=G,.. template=T cpu= ...   on-demand admission
/// covered at=TIME groups=G template=T        which reservation covers such a request
/// check at=TIME                               do the reservations fit beside what runs
/// ```
pub fn run(text: &str) -> String {
    let mut st = State::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "zone" => st.offset = words[1].parse().expect("offset"),
            "host" => {
                let a = Args::parse(&words[2..]);
                let mut h = Host::new(words[1], a.get("site").unwrap_or("s"), a.resources());
                h.traits = a.list("traits").into_iter().map(String::from).collect();
                st.hosts.push(h);
            }
            "gpu" => {
                let host = st
                    .hosts
                    .iter_mut()
                    .find(|h| h.id.as_str() == words[1])
                    .expect("gpu of a known host, before the first request");
                let gpu = match words[2] {
                    "single" => Gpu::single_type(words[3..].iter().map(|w| {
                        let (t, n) = w.split_once(':').expect("TYPE:MAX");
                        (t, n.parse().expect("max"))
                    })),
                    "mixed" => Gpu::mixed(
                        words[3].parse().expect("budget"),
                        words[4..].iter().map(|w| {
                            let v: Vec<&str> = w.split(':').collect();
                            (
                                v[0],
                                v[1].parse().expect("max"),
                                v[2].parse().expect("weight"),
                            )
                        }),
                    ),
                    other => panic!("gpu kind {other}"),
                };
                host.gpus.push(gpu);
            }
            "strategy" => {
                let s = match words[2] {
                    "pack" => Strategy::Pack,
                    "spread" => Strategy::Spread,
                    other => panic!("strategy {other}"),
                };
                st.strategies.push((words[1].to_owned(), s));
            }
            "alloc" => {
                let a = Args::parse(&words[3..]);
                let gpu = a.get("gpu").map(|g| {
                    let (i, t) = g.split_once(':').expect("INDEX:TYPE");
                    GpuSlot {
                        index: i.parse().expect("gpu index"),
                        mdev: t.into(),
                    }
                });
                let slot = a.get("slot").map(|s| {
                    let (c, i) = s.split_once('#').expect("COURSE#N");
                    SlotRef {
                        course: c.into(),
                        index: i.parse().expect("slot index"),
                    }
                });
                let end = a.get("end").map(|t| time(t, st.offset));
                st.allocations.push(Allocation {
                    desktop: words[1].into(),
                    host: words[2].into(),
                    resources: a.resources(),
                    gpu,
                    end,
                    reservation: slot,
                });
            }
            "place" => place_line(&mut st, words[1], &Args::parse(&words[2..])),
            "course" => course_line(&mut st, words[1], &Args::parse(&words[2..])),
            "ask" => ask_line(&mut st, words[1], &Args::parse(&words[2..])),
            "covered" => {
                let a = Args::parse(&words[1..]);
                let at = time(a.get("at").expect("at="), st.offset);
                st.now = Some(at);
                let groups: Vec<_> = a.list("groups").into_iter().map(Into::into).collect();
                let t = a.get("template").unwrap_or("t").into();
                let c = covering_reservation(&st.calendar, &st.allocations, &groups, &t, at);
                let c = c.map_or("none".to_owned(), |s| s.to_string());
                st.out.push(format!("covered @ {}: {c}", st.local(at)));
            }
            "check" => {
                let a = Args::parse(&words[1..]);
                let at = time(a.get("at").expect("at="), st.offset);
                st.now = Some(at);
                st.inv();
                let inv = st.inventory.as_ref().expect("built");
                let r = check_at(inv, &st.calendar, &st.allocations, at).expect("valid");
                let r = r.map_or_else(|s| s.to_string(), |()| "ok".to_owned());
                st.out.push(format!("check @ {}: {r}", st.local(at)));
            }
            other => panic!("unknown command {other}"),
        }
    }
    summary(&mut st);
    st.out.join("\n")
}

fn place_line(st: &mut State, desktop: &str, a: &Args<'_>) {
    let req = a.request();
    let inv = st.inv().clone();
    let usage = Usage::from_allocations(&inv, &st.allocations).expect("valid allocations");
    match place(&inv, &usage, &req, &PlaceOptions::default()) {
        Ok(p) => {
            let gpu = p.gpu.map_or(String::new(), |g| format!(" gpu{g}"));
            st.out.push(format!("{desktop} -> {}{gpu}", p.host));
            st.allocations.push(Allocation {
                desktop: desktop.into(),
                host: p.host,
                resources: req.resources,
                gpu: p
                    .gpu
                    .zip(req.vgpu)
                    .map(|(index, mdev)| GpuSlot { index, mdev }),
                end: None,
                reservation: None,
            });
        }
        Err(nf) => st.out.push(format!("{desktop} -> refused: {nf}")),
    }
}

fn course_line(st: &mut State, id: &str, a: &Args<'_>) {
    let offset = st.offset;
    let schedule = if let Some(once) = a.get("once") {
        let (s, e) = once.split_once("..").expect("TIME..TIME");
        Schedule::Once(Slot {
            start: time(s, offset),
            end: time(e, offset),
        })
    } else {
        let w = a.get("weekly").expect("once= or weekly=");
        let (f, l) = w.split_once("..").expect("DATE..DATE");
        Schedule::Weekly(Weekly {
            first: f.parse().expect("date"),
            last: l.parse().expect("date"),
            days: a
                .list("days")
                .iter()
                .map(|d| d.parse().expect("day"))
                .collect(),
            start_minute: minute(a.get("at").expect("at=")),
            minutes: a.num("minutes", 60),
            except: a
                .list("except")
                .iter()
                .map(|d| d.parse().expect("date"))
                .collect::<BTreeSet<_>>(),
        })
    };
    let course = Course {
        id: id.into(),
        group: a.get("group").unwrap_or("g").into(),
        shape: a.request(),
        count: a.num("count", 1),
        schedule,
        utc_offset_minutes: offset,
    };
    let inv = st.inv().clone();
    match admit_course(&st.calendar, &inv, &course) {
        Ok(cal) => {
            let n = course.slots().expect("admitted").len();
            st.out.push(format!("course {id}: admitted, {n} slots"));
            st.calendar = cal;
        }
        Err(e) => st.out.push(format!("course {id}: refused: {e}")),
    }
}

fn ask_line(st: &mut State, desktop: &str, a: &Args<'_>) {
    let at = time(a.get("at").expect("at="), st.offset);
    st.now = Some(at);
    let ask = OnDemand {
        desktop: desktop.into(),
        request: a.request(),
        groups: a.list("groups").into_iter().map(Into::into).collect(),
        end: a.get("end").map(|t| time(t, st.offset)),
    };
    let inv = st.inv().clone();
    let head = format!("ask {desktop} @ {}", st.local(at));
    let line = match admit_on_demand(at, &st.calendar, &inv, &st.allocations, &ask) {
        Ok(Decision::Admitted(x)) => {
            let slot = x
                .reservation
                .as_ref()
                .map_or(String::new(), |s| format!(" from {s}"));
            let l = format!("{head}: admitted on {}{slot} {}", x.host, st.until(x.end));
            st.allocations.push(x);
            l
        }
        Ok(Decision::Shortened {
            allocation,
            conflict,
        }) => {
            let l = format!(
                "{head}: shortened on {} {} ({} needs the room)",
                allocation.host,
                st.until(allocation.end),
                conflict.slot
            );
            st.allocations.push(allocation);
            l
        }
        Ok(Decision::Refused(r)) => format!("{head}: refused: {r}"),
        Err(e) => format!("{head}: error: {e}"),
    };
    st.out.push(line);
}

/// One line per host: vCPUs, memory and disk in use, and what runs on each GPU.
fn summary(st: &mut State) {
    let inv = st.inv().clone();
    let running = st
        .allocations
        .iter()
        .filter(|a| st.now.is_none_or(|t| a.runs_at(t)));
    let usage = Usage::from_allocations(&inv, running).expect("valid allocations");
    match st.now {
        Some(t) => st.out.push(format!("-- running at {}", st.local(t))),
        None => st.out.push("--".to_owned()),
    }
    for (h, u) in inv.hosts().iter().zip(usage.hosts()) {
        let mut line = format!(
            "{}: cpu {}/{} mem {}/{} disk {}/{}",
            h.id,
            u.used.vcpus,
            h.capacity.vcpus,
            u.used.memory_mb,
            h.capacity.memory_mb,
            u.used.disk_gb,
            h.capacity.disk_gb
        );
        for (i, g) in u.gpus.iter().enumerate() {
            let running: Vec<String> = g.running().map(|(t, n)| format!("{t}x{n}")).collect();
            let running = if running.is_empty() {
                "idle".to_owned()
            } else {
                running.join("+")
            };
            line.push_str(&format!(" | gpu{i} {running}"));
        }
        st.out.push(line);
    }
}
