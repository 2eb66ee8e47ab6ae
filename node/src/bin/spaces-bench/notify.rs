//! The `notify` benchmark: what notifications cost.
//!
//! `notify [--members 1000] [--mentions 5] [--users 100] [--messages-per-sender 200] [--runs 2]`
//!
//! 1. `@room` in a room of `--members` members: a node with notifications
//!    on, every member joined, the owner sends `--mentions` messages with
//!    `@room`, one at a time; for each, the wall time from its
//!    acknowledgement until the notifier has written every member's
//!    notification (`spaces_notifications_total` grew by members − 1), the
//!    notifier's own busy time (`spaces_notify_busy_microseconds_total`)
//!    and the node's CPU over that time. Median and worst.
//! 2. Send throughput with notifications on and off: two nodes, one with
//!    `notifications.enabled = false`, each `--users` members of one room;
//!    the load run's throughput measurement, alternating on and off
//!    `--runs` times each so that a machine busy with something else
//!    skews both alike. With default settings (level `mentions`) a plain
//!    message notifies no one, but the notifier still decides for every
//!    member, which is the cost measured.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;

use crate::{
    NodeProcess, create_room, flags, join_room, measure_throughput, node_metric, percentile, post,
    register_users,
};

pub struct NotifyArgs {
    members: usize,
    mentions: usize,
    users: usize,
    messages_per_sender: usize,
    runs: usize,
}

impl NotifyArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<NotifyArgs> {
        let mut args = NotifyArgs {
            members: 1000,
            mentions: 5,
            users: 100,
            messages_per_sender: 200,
            runs: 2,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--members" => args.members = value.parse()?,
                "--mentions" => args.mentions = value.parse()?,
                "--users" => args.users = value.parse()?,
                "--messages-per-sender" => args.messages_per_sender = value.parse()?,
                "--runs" => args.runs = value.parse()?,
                _ => bail!("unknown flag {flag}"),
            }
        }
        ensure!(
            (2..=5000).contains(&args.members)
                && (1..=100).contains(&args.mentions)
                && (1..=1000).contains(&args.users)
                && (1..=10).contains(&args.runs),
            "bounds: 2 ≤ members ≤ 5000, 1 ≤ mentions ≤ 100, 1 ≤ users ≤ 1000, 1 ≤ runs ≤ 10"
        );
        Ok(args)
    }
}

pub async fn notify(args: NotifyArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()?;

    // 1. @room in a big room.
    let node = NodeProcess::start("notify-room", &[])?;
    let base = node.base.clone();
    let members = register_users(&client, &base, args.members).await?;
    let room_id = create_room(&client, &base, &members[0].token, "everyone").await?;
    join_room(&client, &base, &room_id, &members[1..]).await?;
    let mut walls = Vec::new();
    let mut busy = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..args.mentions {
        let written_0 = node_metric(&client, &base, "spaces_notifications_total").await?;
        let busy_0 = node_metric(&client, &base, "spaces_notify_busy_microseconds_total").await?;
        let cpu_0 = node.cpu_secs();
        post(
            &client,
            format!("{base}/api/v1/rooms/{room_id}/messages"),
            Some(&members[0].token),
            json!({ "body": format!("all hands {i}"), "mentions": { "room": true } }),
        )
        .await?;
        let acked = Instant::now();
        let want = written_0 + (args.members as u64 - 1);
        let deadline = acked + Duration::from_secs(60);
        loop {
            if node_metric(&client, &base, "spaces_notifications_total").await? >= want {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the notifications of @room {i} were not all written within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        walls.push(acked.elapsed().as_secs_f64() * 1000.0);
        cpu.push((node.cpu_secs() - cpu_0) * 1000.0);
        let busy_1 = node_metric(&client, &base, "spaces_notify_busy_microseconds_total").await?;
        busy.push((busy_1 - busy_0) as f64 / 1000.0);
    }
    drop(node);
    for list in [&mut walls, &mut busy, &mut cpu] {
        list.sort_by(f64::total_cmp);
    }

    // 2. Throughput, on and off, alternating.
    let on = NodeProcess::start("notify-on", &[])?;
    let off = NodeProcess::start("notify-off", &[("SPACES__NOTIFICATIONS__ENABLED", "false")])?;
    let mut rooms = Vec::new();
    for node in [&on, &off] {
        let users = register_users(&client, &node.base, args.users).await?;
        let room_id = create_room(&client, &node.base, &users[0].token, "bench").await?;
        join_room(&client, &node.base, &room_id, &users[1..]).await?;
        rooms.push((room_id, users));
    }
    let (mut rate_on, mut rate_off) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        for (i, node) in [&on, &off].into_iter().enumerate() {
            let (room_id, users) = &rooms[i];
            let run = measure_throughput(node, &client, room_id, users, args.messages_per_sender)
                .await
                .context("throughput run")?;
            match i {
                0 => rate_on.push(run.per_sec()),
                _ => rate_off.push(run.per_sec()),
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mean_on, mean_off) = (mean(&rate_on), mean(&rate_off));

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| @room in a {}-member room: notifications written per message | {} |",
        args.members,
        args.members - 1
    );
    println!(
        "| ack → all written, ms (median / worst of {}) | {:.1} / {:.1} |",
        args.mentions,
        percentile(&walls, 0.5),
        percentile(&walls, 1.0)
    );
    println!(
        "| notifier busy, ms (median / worst) | {:.1} / {:.1} |",
        percentile(&busy, 0.5),
        percentile(&busy, 1.0)
    );
    println!(
        "| node CPU over that time, ms (median / worst) | {:.0} / {:.0} |",
        percentile(&cpu, 0.5),
        percentile(&cpu, 1.0)
    );
    println!(
        "| send throughput, notifications on (msg/s, {} runs) | {} (mean {mean_on:.0}) |",
        args.runs,
        rate_on
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| send throughput, notifications off (msg/s, {} runs) | {} (mean {mean_off:.0}) |",
        args.runs,
        rate_off
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| on / off | {:.1} % |",
        if mean_off > 0.0 {
            mean_on / mean_off * 100.0
        } else {
            f64::NAN
        }
    );
    Ok(())
}
