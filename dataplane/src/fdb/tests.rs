use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::*;
use crate::types::{Attachment, PortId};

const BD: BdId = BdId(1);

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, i])
}

fn port(p: u16) -> Location {
    Location::Local(Attachment::untagged(PortId(p)))
}

fn vtep(i: u8) -> Location {
    Location::Vtep(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)))
}

fn secs(s: u64) -> Tick {
    Tick(s * 1000)
}

/// Lets every message settle: owner, then every replica, until quiet.
fn settle(owner: &mut FdbOwner, replicas: &mut [FdbReplica], now: Tick) {
    loop {
        let mut n = owner.process(now);
        for r in replicas.iter_mut() {
            n += r.drain();
        }
        if n == 0 {
            return;
        }
    }
}

fn converged(owner: &FdbOwner, replicas: &[FdbReplica]) -> bool {
    let want = owner.snapshot();
    replicas.iter().all(|r| r.snapshot() == want)
}

#[test]
fn a_new_mac_forwards_from_the_next_frame_and_reaches_every_worker() {
    let (mut owner, mut reps, _) = new(FdbConfig::default(), 3);
    assert_eq!(
        reps[0].learn(BD, mac(1), port(1), secs(1)),
        LearnOutcome::Learned
    );
    // Worker 0 knows it at once, before the owner has even run.
    assert_eq!(reps[0].lookup(BD, mac(1)), Some(port(1)));
    assert_eq!(reps[1].lookup(BD, mac(1)), None);
    settle(&mut owner, &mut reps, secs(1));
    for r in &reps {
        assert_eq!(r.lookup(BD, mac(1)), Some(port(1)));
    }
    // The same MAC in another BD is another entry.
    assert_eq!(reps[1].lookup(BdId(2), mac(1)), None);
    assert!(converged(&owner, &reps));
}

#[test]
fn a_move_applies_locally_at_once_and_is_counted() {
    let (mut owner, mut reps, _) = new(FdbConfig::default(), 2);
    reps[0].learn(BD, mac(1), port(1), secs(1));
    settle(&mut owner, &mut reps, secs(1));
    assert_eq!(
        reps[1].learn(BD, mac(1), vtep(9), secs(2)),
        LearnOutcome::Moved
    );
    assert_eq!(reps[1].lookup(BD, mac(1)), Some(vtep(9)));
    settle(&mut owner, &mut reps, secs(2));
    assert_eq!(reps[0].lookup(BD, mac(1)), Some(vtep(9)));
    assert_eq!(owner.stats().moves, 1);
    assert_eq!(owner.show(Some(BD), secs(2))[0].moves, 1);
}

#[test]
fn refreshes_are_sent_at_most_once_per_interval() {
    let (mut owner, mut reps, _) = new(FdbConfig::default(), 1);
    assert_eq!(
        reps[0].learn(BD, mac(1), port(1), Tick(0)),
        LearnOutcome::Learned
    );
    let mut sent = 0;
    for ms in (1..3000).step_by(10) {
        match reps[0].learn(BD, mac(1), port(1), Tick(ms)) {
            LearnOutcome::Known => {}
            LearnOutcome::Refreshed => sent += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Frames every 10 ms for 3 s: refreshes at 1 s and 2 s only.
    assert_eq!(sent, 2);
    assert_eq!(owner.process(Tick(3000)), 3);
    assert_eq!(owner.stats().refreshes, 2);
}

#[test]
fn entries_age_out_unless_refreshed() {
    let config = FdbConfig {
        ageing: Duration::from_secs(300),
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 2);
    reps[0].learn(BD, mac(1), port(1), secs(0)); // goes quiet
    reps[0].learn(BD, mac(2), port(2), secs(0)); // keeps talking
    settle(&mut owner, &mut reps, secs(0));
    for s in (0..=400).step_by(5) {
        let now = secs(s);
        reps[1].learn(BD, mac(2), port(2), now);
        settle(&mut owner, &mut reps, now);
        owner.age(now);
        settle(&mut owner, &mut reps, now);
        if s < 300 {
            assert_eq!(reps[1].lookup(BD, mac(1)), Some(port(1)), "at {s} s");
        } else {
            assert_eq!(reps[1].lookup(BD, mac(1)), None, "at {s} s");
        }
        assert_eq!(reps[0].lookup(BD, mac(2)), Some(port(2)), "at {s} s");
    }
    assert_eq!(owner.stats().aged, 1);
    assert!(converged(&owner, &reps));
}

#[test]
fn static_entries_never_move_or_age() {
    let (mut owner, mut reps, control) = new(FdbConfig::default(), 2);
    // A worker's learn already in flight when the static is added.
    reps[0].learn(BD, mac(1), port(1), secs(1));
    owner
        .static_add(FdbKey::new(BD, mac(1)), vtep(7), secs(1))
        .unwrap();
    settle(&mut owner, &mut reps, secs(1));
    assert!(converged(&owner, &reps));
    assert_eq!(reps[0].lookup(BD, mac(1)), Some(vtep(7)));
    assert_eq!(
        reps[1].learn(BD, mac(1), port(2), secs(2)),
        LearnOutcome::Static
    );
    assert_eq!(reps[1].lookup(BD, mac(1)), Some(vtep(7)));
    settle(&mut owner, &mut reps, secs(2));
    owner.age(secs(10_000));
    owner.flush(None);
    settle(&mut owner, &mut reps, secs(10_000));
    assert_eq!(reps[1].lookup(BD, mac(1)), Some(vtep(7)));
    assert!(converged(&owner, &reps));
    assert_eq!(
        owner.static_add(FdbKey::new(BD, MacAddr::BROADCAST), vtep(1), secs(1)),
        Err(FdbError::NotUnicast(MacAddr::BROADCAST))
    );
    drop(control);
}

#[test]
fn the_cap_limits_new_macs_but_not_known_ones() {
    let config = FdbConfig {
        default_max_macs: Some(2),
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 2);
    // Three new MACs on two workers before the owner runs: it takes two.
    reps[0].learn(BD, mac(1), port(1), secs(1));
    reps[1].learn(BD, mac(2), port(1), secs(1));
    reps[1].learn(BD, mac(3), port(1), secs(1));
    settle(&mut owner, &mut reps, secs(1));
    assert_eq!(owner.learned_in(BD), 2);
    assert_eq!(owner.stats().cap_rejects, 1);
    assert!(converged(&owner, &reps));
    // Once the full flag is out, workers do not even try.
    assert_eq!(
        reps[0].learn(BD, mac(4), port(1), secs(2)),
        LearnOutcome::CapReached
    );
    assert_eq!(reps[0].lookup(BD, mac(4)), None);
    // Moves of known MACs are still learned.
    assert_eq!(
        reps[0].learn(BD, mac(1), port(2), secs(2)),
        LearnOutcome::Moved
    );
    // Statics do not count against the cap.
    owner
        .static_add(FdbKey::new(BD, mac(9)), port(3), secs(2))
        .unwrap();
    // Flushing makes room again.
    settle(&mut owner, &mut reps, secs(2));
    owner.flush(Some(BD));
    settle(&mut owner, &mut reps, secs(3));
    assert_eq!(
        reps[0].learn(BD, mac(4), port(1), secs(3)),
        LearnOutcome::Learned
    );
    settle(&mut owner, &mut reps, secs(3));
    assert_eq!(owner.learned_in(BD), 1);
    assert!(converged(&owner, &reps));
    // Another BD has its own count.
    owner.set_max_macs(BdId(2), Some(1));
    assert_eq!(
        reps[0].learn(BdId(2), mac(1), port(1), secs(3)),
        LearnOutcome::Learned
    );
    settle(&mut owner, &mut reps, secs(3));
    assert_eq!(owner.learned_in(BdId(2)), 1);
}

#[test]
fn a_flapping_mac_is_held_then_released() {
    let config = FdbConfig {
        move_limit: 3,
        hold_time: Duration::from_secs(5),
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 2);
    reps[0].learn(BD, mac(1), port(1), Tick(0));
    settle(&mut owner, &mut reps, Tick(0));
    // Two hosts claiming the same MAC, ping-ponging every 100 ms.
    let mut outcomes = Vec::new();
    for i in 1..=6u64 {
        let loc = if i % 2 == 1 { port(2) } else { port(1) };
        let now = Tick(i * 100);
        outcomes.push(reps[(i % 2) as usize].learn(BD, mac(1), loc, now));
        settle(&mut owner, &mut reps, now);
    }
    assert_eq!(owner.stats().moves, 3);
    assert_eq!(owner.stats().flaps, 1);
    assert!(owner.show(Some(BD), Tick(700))[0].held);
    // The fourth move was refused: held where the third put it, and
    // replicas, told so, stop moving it.
    assert_eq!(outcomes[3], LearnOutcome::Moved); // the local guess
    assert_eq!(outcomes[5], LearnOutcome::Held);
    assert!(converged(&owner, &reps));
    let held_at = reps[0].lookup(BD, mac(1));
    assert_eq!(held_at, Some(port(2)));
    // After the hold it moves again.
    let later = Tick(400 + 5000 + 1);
    let to = if held_at == Some(port(1)) {
        port(2)
    } else {
        port(1)
    };
    assert_eq!(reps[0].learn(BD, mac(1), to, later), LearnOutcome::Moved);
    settle(&mut owner, &mut reps, later);
    assert_eq!(reps[1].lookup(BD, mac(1)), Some(to));
    assert!(!owner.show(Some(BD), later)[0].held);
}

#[test]
fn a_full_owner_queue_undoes_the_local_change() {
    let config = FdbConfig {
        inbox_capacity: 1,
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 1);
    assert_eq!(
        reps[0].learn(BD, mac(1), port(1), secs(1)),
        LearnOutcome::Learned
    );
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), secs(1)),
        LearnOutcome::QueueFull
    );
    assert_eq!(reps[0].lookup(BD, mac(2)), None);
    assert_eq!(
        reps[0].learn(BD, mac(1), port(2), secs(1)),
        LearnOutcome::QueueFull
    );
    assert_eq!(reps[0].lookup(BD, mac(1)), Some(port(1)));
    settle(&mut owner, &mut reps, secs(1));
    // The next frame tries again.
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), secs(1)),
        LearnOutcome::Learned
    );
    settle(&mut owner, &mut reps, secs(1));
    assert!(converged(&owner, &reps));
    assert_eq!(owner.snapshot().len(), 2);
}

#[test]
fn control_goes_through_a_running_owner() {
    let (owner, mut reps, control) = new(FdbConfig::default(), 1);
    let thread = std::thread::spawn(move || owner.run(|| Tick(1000)));
    reps[0].learn(BD, mac(1), port(1), Tick(1000));
    control
        .static_add(FdbKey::new(BD, mac(2)), vtep(3))
        .expect("static add");
    let shown = control.show(Some(BD)).expect("show");
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0].kind, EntryKind::Learned);
    assert_eq!(shown[1].kind, EntryKind::Static);
    assert_eq!(shown[1].loc, vtep(3));
    assert_eq!(
        control.static_del(FdbKey::new(BD, mac(1))),
        Err(FdbError::NotStatic {
            bd: BD,
            mac: mac(1)
        })
    );
    assert_eq!(
        control.static_del(FdbKey::new(BD, mac(5))),
        Err(FdbError::NotFound {
            bd: BD,
            mac: mac(5)
        })
    );
    assert_eq!(control.flush(Some(BD)), Ok(1));
    control
        .static_del(FdbKey::new(BD, mac(2)))
        .expect("static del");
    assert_eq!(control.show(None).expect("show"), vec![]);
    assert_eq!(control.stats().expect("stats").learned, 1);
    reps[0].drain();
    assert!(reps[0].is_empty());
    drop(reps);
    let stats = {
        let c2 = control.clone();
        drop(control);
        drop(c2);
        thread.join().expect("owner thread")
    };
    assert_eq!(stats.flushed, 1);
}

#[test]
fn control_reports_a_stopped_owner() {
    let (owner, reps, control) = new(FdbConfig::default(), 1);
    drop(owner);
    drop(reps);
    assert_eq!(control.show(None), Err(FdbError::OwnerGone));
}

#[test]
fn statics_are_not_refreshed_and_failed_refreshes_wait_an_interval() {
    let config = FdbConfig {
        inbox_capacity: 1,
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 1);
    owner
        .static_add(FdbKey::new(BD, mac(1)), port(1), secs(0))
        .unwrap();
    settle(&mut owner, &mut reps, secs(0));
    for s in 1..5 {
        assert_eq!(
            reps[0].learn(BD, mac(1), port(1), secs(s)),
            LearnOutcome::Known
        );
    }
    assert_eq!(owner.process(secs(5)), 0);

    // Fill the one-slot channel, then a refresh falls due: it is dropped,
    // and not retried on every following frame.
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), secs(5)),
        LearnOutcome::Learned
    );
    owner.process(secs(5));
    settle(&mut owner, &mut reps, secs(5));
    assert_eq!(
        reps[0].learn(BD, mac(3), port(1), secs(6)),
        LearnOutcome::Learned
    );
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), secs(7)),
        LearnOutcome::QueueFull
    );
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), Tick(7001)),
        LearnOutcome::Known
    );
    settle(&mut owner, &mut reps, secs(7));
    assert_eq!(
        reps[0].learn(BD, mac(2), port(1), secs(8)),
        LearnOutcome::Refreshed
    );
}

#[test]
fn preview_tells_what_learning_will_do_and_changes_nothing() {
    let config = FdbConfig {
        move_limit: 2,
        ..FdbConfig::default()
    };
    let (mut owner, mut reps, _) = new(config, 1);
    owner.set_max_macs(BD, Some(2));
    let now = secs(1);
    let key = |i| FdbKey::new(BD, mac(i));
    let p = owner.preview(key(1), port(1), key(2), now);
    assert_eq!(p.learn, LearnVerdict::Learn);
    assert_eq!((p.src, p.dst), (None, None));
    assert_eq!((p.fill.learned, p.fill.max), (0, Some(2)));
    // Previewing twice learns nothing.
    assert_eq!(
        owner.preview(key(1), port(1), key(2), now).learn,
        LearnVerdict::Learn
    );
    assert!(owner.snapshot().is_empty());
    assert_eq!(owner.stats(), FdbStats::default());

    reps[0].learn(BD, mac(1), port(1), now);
    reps[0].learn(BD, mac(2), port(2), now);
    settle(&mut owner, &mut reps, now);
    let before = owner.snapshot();
    let stats = owner.stats();
    let p = owner.preview(key(1), port(1), key(2), now);
    assert_eq!(p.learn, LearnVerdict::Refresh);
    assert_eq!(p.dst.map(|e| e.loc), Some(port(2)));
    assert_eq!((p.fill.entries, p.fill.learned), (2, 2));
    assert_eq!(
        owner.preview(key(3), port(1), key(2), now).learn,
        LearnVerdict::CapReached { max: 2 }
    );
    assert_eq!(
        owner.preview(key(1), port(3), key(2), now).learn,
        LearnVerdict::Move { from: port(1) }
    );
    owner.static_add(key(2), vtep(9), now).unwrap();
    let before_static = owner.snapshot();
    assert_eq!(
        owner.preview(key(2), port(1), key(1), now).learn,
        LearnVerdict::Static { at: vtep(9) }
    );
    assert_ne!(before, before_static);
    assert_eq!(owner.snapshot(), before_static);
    assert_eq!(owner.stats().learned, stats.learned);

    // Moves: the third within a second is a flap, then the MAC is held.
    let mut t = now;
    for (i, at) in [port(3), port(1)].into_iter().enumerate() {
        t = Tick(t.0 + 10);
        let from = if i == 0 { port(1) } else { port(3) };
        assert_eq!(
            owner.preview(key(1), at, key(2), t).learn,
            LearnVerdict::Move { from }
        );
        reps[0].learn(BD, mac(1), at, t);
        settle(&mut owner, &mut reps, t);
    }
    t = Tick(t.0 + 10);
    assert_eq!(
        owner.preview(key(1), port(3), key(2), t).learn,
        LearnVerdict::Flap { from: port(1) }
    );
    reps[0].learn(BD, mac(1), port(3), t);
    settle(&mut owner, &mut reps, t);
    assert_eq!(owner.stats().flaps, 1);
    assert!(matches!(
        owner.preview(key(1), port(3), key(2), Tick(t.0 + 10)).learn,
        LearnVerdict::Held { at, .. } if at == port(1)
    ));
}

#[test]
fn remote_vteps_follow_entries_as_they_come_move_and_go() {
    let ip = |i: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i));
    let (mut owner, mut reps, _) = new(FdbConfig::default(), 1);
    reps[0].learn(BD, mac(1), vtep(1), secs(1));
    reps[0].learn(BD, mac(2), vtep(1), secs(1));
    reps[0].learn(BD, mac(3), vtep(2), secs(1));
    reps[0].learn(BdId(2), mac(4), port(1), secs(1));
    owner
        .static_add(FdbKey::new(BdId(2), mac(5)), vtep(3), secs(1))
        .unwrap();
    settle(&mut owner, &mut reps, secs(1));
    assert_eq!(owner.remote_vteps(), vec![ip(1), ip(2), ip(3)]);
    // One of vtep 1's two MACs moves to a port: vtep 1 stays; vtep 2's
    // only MAC moves to vtep 4.
    reps[0].learn(BD, mac(1), port(2), secs(2));
    reps[0].learn(BD, mac(3), vtep(4), secs(2));
    settle(&mut owner, &mut reps, secs(2));
    assert_eq!(owner.remote_vteps(), vec![ip(1), ip(3), ip(4)]);
    // A static replacing a learned entry; ageing; a flush; a static del.
    owner
        .static_add(FdbKey::new(BD, mac(2)), vtep(5), secs(3))
        .unwrap();
    assert_eq!(owner.remote_vteps(), vec![ip(3), ip(4), ip(5)]);
    reps[0].learn(BD, mac(6), vtep(6), secs(400));
    settle(&mut owner, &mut reps, secs(400));
    owner.age(secs(400));
    assert_eq!(owner.remote_vteps(), vec![ip(3), ip(5), ip(6)]);
    owner.flush(None);
    assert_eq!(owner.remote_vteps(), vec![ip(3), ip(5)]);
    owner.static_del(FdbKey::new(BdId(2), mac(5))).unwrap();
    owner.static_del(FdbKey::new(BD, mac(2))).unwrap();
    assert!(owner.remote_vteps().is_empty());
    // Every count agrees with a full scan of the table.
    assert!(owner
        .show(None, secs(400))
        .iter()
        .all(|e| !matches!(e.loc, Location::Vtep(_))));
}

#[test]
fn remote_vteps_through_a_running_owner() {
    let (owner, _reps, control) = new(FdbConfig::default(), 1);
    let t = std::thread::spawn(move || owner.run(|| Tick(0)));
    control
        .static_add(FdbKey::new(BD, mac(1)), vtep(8))
        .unwrap();
    assert_eq!(
        control.remote_vteps(),
        Ok(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8))])
    );
    drop(control);
    drop(_reps);
    t.join().unwrap();
}
