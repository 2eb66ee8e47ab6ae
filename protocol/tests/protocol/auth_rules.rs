//! The auth rules (docs/spec/auth.md), each shown accepting and refusing.
//! Test names cite the rule anchors (`a12` is auth.md#a12).
//!
//! Most tests grow a linear room with [`Chain`], where admission and
//! resolution see the same state; `Chain::insert` also checks that
//! `Room::check` predicted each outcome.

use spaces_protocol::auth::{self, MAX_SLOWMODE_SECONDS, MAX_TIMEOUT_MS};
use spaces_protocol::content::*;
use spaces_protocol::limits::MAX_ROLES;
use spaces_protocol::permissions::OWNER_RANK;
use spaces_protocol::room::InsertError;
use spaces_protocol::{AuthError, Permissions, Rejection, RoleId, RoomState};

use super::support::*;

use AuthError::{
    Banned, CannotGrant, DuplicateCreate, MissingPermission, NoChange, NoCreate, NotMember, Rank,
    Target, TimedOut, Value,
};
use Membership::{Ban, Invite, Join, Knock, Leave};

fn owner() -> Author {
    Author::new(1, "owner")
}
fn alice() -> Author {
    Author::new(2, "alice")
}
fn bob() -> Author {
    Author::new(2, "bob")
}
fn carol() -> Author {
    Author::new(3, "carol")
}
fn moderator() -> Author {
    Author::new(4, "mod")
}

/// What an attempt should give.
type Outcome = Result<(), AuthError>;

const MOD_PERMS: Permissions =
    Permissions(Permissions::KICK.0 | Permissions::BAN.0 | Permissions::INVITE.0);

/// Puts `who` into `membership` (None: leaves them unknown to the room),
/// whatever the join rule, restoring the rule afterwards.
fn bring(chain: &mut Chain, owner: &Author, who: &Author, membership: Option<Membership>) {
    let user = who.user();
    match membership {
        None => {}
        Some(Join) => chain.join(owner, who),
        Some(Invite) => {
            chain.push(owner, member(&user, Invite));
        }
        Some(Leave) => {
            chain.join(owner, who);
            chain.push(who, member(&user, Leave));
        }
        Some(Knock) => {
            let rule = chain.room.state().join_rule();
            if rule != JoinRule::Knock {
                chain.push(owner, Content::JoinRule(JoinRule::Knock));
            }
            chain.push(who, member(&user, Knock));
            if rule != JoinRule::Knock {
                chain.push(owner, Content::JoinRule(rule));
            }
        }
        Some(Ban) => {
            chain.push(owner, member(&user, Ban));
        }
    }
    assert_eq!(chain.room.state().membership(&user), membership);
}

#[test]
fn a1_a2_create_comes_first_and_once() {
    let owner = owner();
    let chain = Chain::new(&owner, RoomKind::Room, JoinRule::Public);
    let message = chain.next_at(&owner, T0 + 1, text("hi"));
    // A2: without a create event nothing is allowed.
    assert_eq!(
        auth::authorize(&RoomState::default(), &message, T0, &|_| None),
        Err(NoCreate)
    );
    assert_eq!(
        auth::authorize(chain.room.state(), &message, T0, &|_| None),
        Ok(())
    );
    // A1: a second create is refused; the first is allowed on empty state.
    let other_create = alice().create(RoomKind::Room, JoinRule::Public, T0);
    assert_eq!(
        auth::authorize(chain.room.state(), &other_create, T0, &|_| None),
        Err(DuplicateCreate)
    );
    assert_eq!(
        auth::authorize(&RoomState::default(), &other_create, T0, &|_| None),
        Ok(())
    );
    // Through a room, another create is simply of another room.
    let mut room = chain.room;
    assert_eq!(insert_code(&room.insert(other_create)), "wrong_room");
    // A room starts from its create event and nothing else.
    assert_eq!(
        spaces_protocol::Room::new(message).unwrap_err(),
        Rejection::Shape("a room starts with its create event")
    );
}

#[test]
fn s1_create_sets_up_the_room() {
    let owner = owner();
    let chain = Chain::new(&owner, RoomKind::Space, JoinRule::Knock);
    let state = chain.room.state();
    assert_eq!(state.creator(), Some(&owner.user()));
    assert!(state.is_owner(&owner.user()));
    assert_eq!(state.kind(), Some(RoomKind::Space));
    assert_eq!(state.join_rule(), JoinRule::Knock);
    assert_eq!(state.history_visibility(), HistoryVisibility::Shared);
    assert_eq!(state.joined(), vec![owner.user()]);
    assert_eq!(state.nodes(), vec![owner.key.node_id()]);
    let everyone = state.role(RoleId::EVERYONE).unwrap();
    assert_eq!(
        (everyone.rank, everyone.permissions),
        (0, Permissions::DEFAULT_EVERYONE)
    );
    assert_eq!(Permissions::DEFAULT_EVERYONE.0, 0x017);
    assert_eq!(state.rank(&owner.user()), OWNER_RANK);
    assert_eq!(state.permissions(&owner.user()), Permissions::ALL);
    assert_eq!(
        state.permissions(&alice().user()),
        Permissions::DEFAULT_EVERYONE
    );
    assert_eq!(state.slowmode_seconds(), 0);
    // Defaults of a state no create event touched.
    let empty = RoomState::default();
    assert_eq!(
        (empty.join_rule(), empty.history_visibility()),
        (JoinRule::Invite, HistoryVisibility::Shared)
    );
}

#[test]
fn a3_to_a9_membership_by_the_target() {
    // (join rule, target's membership before, what they ask for, outcome)
    let cases: &[(JoinRule, Option<Membership>, Membership, Outcome)] = &[
        // A3: banned, whatever is asked.
        (JoinRule::Public, Some(Ban), Join, Err(Banned)),
        (JoinRule::Public, Some(Ban), Leave, Err(Banned)),
        (JoinRule::Knock, Some(Ban), Knock, Err(Banned)),
        (JoinRule::Public, Some(Ban), Invite, Err(Banned)),
        // A4
        (JoinRule::Public, Some(Join), Join, Err(NoChange)),
        (JoinRule::Knock, Some(Knock), Knock, Err(NoChange)),
        // A5: an invite lets in whatever the rule.
        (JoinRule::Invite, Some(Invite), Join, Ok(())),
        (JoinRule::Knock, Some(Invite), Join, Ok(())),
        (JoinRule::Public, Some(Invite), Join, Ok(())),
        // A6
        (JoinRule::Public, None, Join, Ok(())),
        (JoinRule::Public, Some(Leave), Join, Ok(())),
        (JoinRule::Public, Some(Knock), Join, Ok(())),
        (JoinRule::Invite, None, Join, Err(AuthError::JoinRule)),
        (
            JoinRule::Invite,
            Some(Leave),
            Join,
            Err(AuthError::JoinRule),
        ),
        (JoinRule::Knock, None, Join, Err(AuthError::JoinRule)),
        (JoinRule::Knock, Some(Knock), Join, Err(AuthError::JoinRule)),
        // A7: leave, decline, withdraw.
        (JoinRule::Public, Some(Join), Leave, Ok(())),
        (JoinRule::Invite, Some(Invite), Leave, Ok(())),
        (JoinRule::Knock, Some(Knock), Leave, Ok(())),
        (JoinRule::Public, None, Leave, Err(NotMember)),
        (JoinRule::Public, Some(Leave), Leave, Err(NotMember)),
        // A8
        (JoinRule::Knock, Some(Join), Knock, Err(NoChange)),
        (JoinRule::Knock, Some(Invite), Knock, Err(NoChange)),
        (JoinRule::Knock, None, Knock, Ok(())),
        (JoinRule::Knock, Some(Leave), Knock, Ok(())),
        (JoinRule::Public, None, Knock, Err(AuthError::JoinRule)),
        (JoinRule::Invite, None, Knock, Err(AuthError::JoinRule)),
        // A9
        (
            JoinRule::Public,
            None,
            Invite,
            Err(Target("cannot invite or ban oneself")),
        ),
        (
            JoinRule::Public,
            Some(Join),
            Invite,
            Err(Target("cannot invite or ban oneself")),
        ),
        (
            JoinRule::Public,
            Some(Join),
            Ban,
            Err(Target("cannot invite or ban oneself")),
        ),
    ];
    let (owner, alice) = (owner(), alice());
    for (i, (rule, current, asked, want)) in cases.iter().enumerate() {
        let mut chain = Chain::new(&owner, RoomKind::Room, *rule);
        bring(&mut chain, &owner, &alice, *current);
        let got = chain.attempt(&alice, member(&alice.user(), *asked));
        assert_eq!(&got, want, "case {i}: {rule:?}, {current:?} asks {asked:?}");
        let now = chain.room.state().membership(&alice.user());
        assert_eq!(
            now,
            if got.is_ok() { Some(*asked) } else { *current },
            "case {i}: state after"
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Actor {
    Owner,
    /// Rank 10 with kick, ban, invite.
    Moderator,
    /// Joined with `@everyone`'s permissions only.
    Plain,
    /// Never joined.
    Outsider,
}

#[test]
fn a10_to_a16_membership_by_someone_else() {
    let cases: &[(Actor, Option<Membership>, Membership, Outcome)] = &[
        // A10
        (Actor::Outsider, Some(Join), Leave, Err(NotMember)),
        (Actor::Outsider, None, Invite, Err(NotMember)),
        // A11
        (
            Actor::Moderator,
            None,
            Join,
            Err(Target("only the user can join or knock")),
        ),
        (
            Actor::Owner,
            Some(Invite),
            Join,
            Err(Target("only the user can join or knock")),
        ),
        (
            Actor::Moderator,
            None,
            Knock,
            Err(Target("only the user can join or knock")),
        ),
        // A12: invite (and accept a knock); @everyone holds `invite` by default.
        (Actor::Plain, None, Invite, Ok(())),
        (Actor::Moderator, Some(Leave), Invite, Ok(())),
        (Actor::Moderator, Some(Knock), Invite, Ok(())),
        (Actor::Moderator, Some(Ban), Invite, Err(Banned)),
        (Actor::Moderator, Some(Join), Invite, Err(NoChange)),
        (Actor::Moderator, Some(Invite), Invite, Err(NoChange)),
        // A13: unban.
        (Actor::Moderator, Some(Ban), Leave, Ok(())),
        (
            Actor::Plain,
            Some(Ban),
            Leave,
            Err(MissingPermission(Permissions::BAN)),
        ),
        // A14: kick, revoke an invite, reject a knock.
        (Actor::Moderator, Some(Join), Leave, Ok(())),
        (Actor::Moderator, Some(Invite), Leave, Ok(())),
        (Actor::Moderator, Some(Knock), Leave, Ok(())),
        (
            Actor::Plain,
            Some(Join),
            Leave,
            Err(MissingPermission(Permissions::KICK)),
        ),
        (
            Actor::Plain,
            Some(Invite),
            Leave,
            Err(MissingPermission(Permissions::KICK)),
        ),
        // A15
        (Actor::Moderator, None, Leave, Err(NotMember)),
        (Actor::Moderator, Some(Leave), Leave, Err(NotMember)),
        // A16: ban, also of someone who never joined.
        (Actor::Moderator, Some(Join), Ban, Ok(())),
        (Actor::Moderator, None, Ban, Ok(())),
        (Actor::Moderator, Some(Knock), Ban, Ok(())),
        (Actor::Owner, Some(Leave), Ban, Ok(())),
        (Actor::Moderator, Some(Ban), Ban, Err(NoChange)),
        (
            Actor::Plain,
            Some(Join),
            Ban,
            Err(MissingPermission(Permissions::BAN)),
        ),
    ];
    let (owner, alice, carol, moderator) = (owner(), alice(), carol(), moderator());
    for (i, (actor, current, asked, want)) in cases.iter().enumerate() {
        let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
        chain.join(&owner, &moderator);
        chain.grant(&owner, &moderator, 1, 10, MOD_PERMS);
        chain.join(&owner, &carol);
        bring(&mut chain, &owner, &alice, *current);
        let sender = match actor {
            Actor::Owner => &owner,
            Actor::Moderator => &moderator,
            Actor::Plain => &carol,
            Actor::Outsider => &bob(),
        };
        let got = chain.attempt(sender, member(&alice.user(), *asked));
        assert_eq!(
            &got, want,
            "case {i}: {actor:?} makes {current:?} {asked:?}"
        );
        let now = chain.room.state().membership(&alice.user());
        assert_eq!(
            now,
            if got.is_ok() { Some(*asked) } else { *current },
            "case {i}: state after"
        );
    }
}

#[test]
fn h2_membership_needs_to_outrank() {
    let (owner, alice, moderator) = (owner(), alice(), moderator());
    let peer = Author::new(5, "peer");
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    for who in [&moderator, &peer, &alice] {
        chain.join(&owner, who);
    }
    chain.grant(&owner, &moderator, 1, 10, MOD_PERMS);
    chain.grant(&owner, &peer, 2, 10, MOD_PERMS);
    // Equal rank: neither acts on the other.
    assert_eq!(
        chain.attempt(&moderator, member(&peer.user(), Leave)),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&peer, member(&moderator.user(), Ban)),
        Err(Rank)
    );
    // The owner outranks everybody and nobody outranks the owner.
    assert_eq!(
        chain.attempt(&moderator, member(&owner.user(), Leave)),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&moderator, member(&owner.user(), Ban)),
        Err(Rank)
    );
    // With a higher rank the same kick goes through.
    chain.grant(&owner, &moderator, 3, 11, Permissions::NONE);
    assert_eq!(
        chain.attempt(&peer, member(&moderator.user(), Leave)),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&moderator, member(&peer.user(), Leave)),
        Ok(())
    );
    // A ban by a rank-0 holder of `ban` (through @everyone) cannot outrank anyone.
    chain.push(
        &owner,
        everyone(Permissions::DEFAULT_EVERYONE | Permissions::BAN),
    );
    assert_eq!(
        chain.attempt(&alice, member(&carol().user(), Ban)),
        Err(Rank)
    );
    // Unban needs to outrank too: the banned user holds no roles any more, so rank 1 is enough.
    chain.push(&owner, member(&peer.user(), Ban));
    chain.grant(&owner, &alice, 4, 1, Permissions::BAN);
    assert_eq!(chain.attempt(&alice, member(&peer.user(), Leave)), Ok(()));
}

#[test]
fn a17_direct_rooms_hold_two() {
    let (owner, alice, bob, carol) = (owner(), alice(), bob(), carol());
    let mut chain = Chain::new(&owner, RoomKind::Direct, JoinRule::Invite);
    chain.push(&owner, member(&alice.user(), Invite));
    // Owner joined + alice invited: no room for a third invite.
    assert_eq!(
        chain.attempt(&owner, member(&bob.user(), Invite)),
        Err(Value("a direct room has two members"))
    );
    chain.push(&alice, member(&alice.user(), Join));
    assert_eq!(
        chain.attempt(&alice, member(&bob.user(), Invite)),
        Err(Value("a direct room has two members"))
    );
    // Once someone leaves there is room again.
    chain.push(&alice, member(&alice.user(), Leave));
    chain.push(&owner, member(&bob.user(), Invite));
    assert_eq!(
        chain.attempt(&owner, member(&carol.user(), Invite)),
        Err(Value("a direct room has two members"))
    );
    // Joining by invite is checked too: an invite issued while there was room
    // cannot be used once two others are in.
    let mut chain = Chain::new(&owner, RoomKind::Direct, JoinRule::Invite);
    chain.push(&owner, member(&alice.user(), Invite));
    chain.push(&alice, member(&alice.user(), Leave));
    chain.push(&owner, member(&bob.user(), Invite));
    chain.push(&bob, member(&bob.user(), Join));
    // alice is gone; re-invite is refused, and a stale invite would be too.
    assert_eq!(
        chain.attempt(&owner, member(&alice.user(), Invite)),
        Err(Value("a direct room has two members"))
    );
    // Other kinds have no limit.
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    for who in [&alice, &bob, &carol] {
        chain.join(&owner, who);
    }
    assert_eq!(chain.room.state().joined().len(), 4);
    // A public direct room still holds two (auth.md A17).
    let mut chain = Chain::new(&owner, RoomKind::Direct, JoinRule::Public);
    chain.push(&alice, member(&alice.user(), Join));
    assert_eq!(
        chain.attempt(&bob, member(&bob.user(), Join)),
        Err(AuthError::Value("a direct room has two members"))
    );
}

#[test]
fn a17_direct_room_join_by_invite_is_checked() {
    // Two invites race. Each is admitted against its own parents; resolution
    // keeps the one that sorts first and refuses the other.
    let (owner, alice, bob) = (owner(), alice(), bob());
    let chain = Chain::new(&owner, RoomKind::Direct, JoinRule::Invite);
    let room_id = chain.room_id();
    let create = chain.create.clone();
    let invite_alice = owner.on(room_id, &[&create], T0 + 1, member(&alice.user(), Invite));
    let invite_bob = owner.on(room_id, &[&create], T0 + 1, member(&bob.user(), Invite));
    let mut replica = Replica::new(&create);
    replica.deliver(invite_alice.clone());
    replica.deliver(invite_bob.clone());
    let (kept, refused, loser) = if replica.room.is_accepted(&invite_alice.id()) {
        (&invite_alice, &invite_bob, &bob)
    } else {
        (&invite_bob, &invite_alice, &alice)
    };
    assert!(replica.room.is_accepted(&kept.id()));
    assert!(
        !replica.room.is_accepted(&refused.id()),
        "a third member would not fit"
    );
    // The loser joins on their own invite alone: admitted (at those parents
    // they are invited and the owner is the only other member), refused by
    // resolution, where their invite never took effect.
    let join = loser.on(room_id, &[refused], T0 + 2, member(&loser.user(), Join));
    let Ok(spaces_protocol::Inserted::New {
        accepted, refusal, ..
    }) = replica.room.insert(join)
    else {
        panic!("admitted")
    };
    assert!(!accepted);
    assert_eq!(refusal, Some(AuthError::JoinRule));
    assert_eq!(replica.room.state().joined(), vec![owner.user()]);
    // Joining after seeing both invites is refused at admission already.
    let join = loser.on(
        room_id,
        &[&invite_alice, &invite_bob],
        T0 + 3,
        member(&loser.user(), Join),
    );
    assert_eq!(insert_code(&replica.room.insert(join)), "join_rule");
}

fn role_setup() -> (Chain, Author, Author, Author) {
    let (owner, moderator, alice) = (owner(), moderator(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &moderator);
    chain.join(&owner, &alice);
    // mod: rank 10, may manage roles and kick.
    chain.grant(
        &owner,
        &moderator,
        1,
        10,
        Permissions::MANAGE_ROLES | Permissions::KICK,
    );
    // role 2: below mod; role 3: above mod; role 5: below mod but with a bit mod lacks.
    chain.push(&owner, role(2, 5, Permissions::KICK));
    chain.push(&owner, role(3, 20, Permissions::KICK));
    chain.push(&owner, role(5, 5, Permissions::BAN));
    (chain, owner, moderator, alice)
}

#[test]
fn a19_to_a25_role_definitions() {
    const UNKNOWN_BIT: Permissions = Permissions(1 << 40);
    let cases: Vec<(&str, Content, Result<(), AuthError>)> = vec![
        (
            "new role below, with a held bit",
            role(4, 5, Permissions::KICK),
            Ok(()),
        ),
        (
            "new role with a bit mod lacks",
            role(4, 5, Permissions::BAN),
            Err(CannotGrant),
        ),
        (
            "new role at mod's rank",
            role(4, 10, Permissions::NONE),
            Err(Rank),
        ),
        (
            "new role above mod",
            role(4, 11, Permissions::NONE),
            Err(Rank),
        ),
        (
            "rank 0 for a role",
            role(4, 0, Permissions::NONE),
            Err(Value("a role's rank is between 1 and the owner's")),
        ),
        (
            "owner's rank",
            role(4, OWNER_RANK, Permissions::NONE),
            Err(Value("a role's rank is between 1 and the owner's")),
        ),
        ("unknown bits are free", role(4, 5, UNKNOWN_BIT), Ok(())),
        ("edit a lower role", role(2, 9, Permissions::KICK), Ok(())),
        ("revoke a held bit", role(2, 5, Permissions::NONE), Ok(())),
        (
            "revoke a bit mod lacks",
            role(5, 5, Permissions::NONE),
            Err(CannotGrant),
        ),
        (
            "edit a higher role",
            role(3, 5, Permissions::KICK),
            Err(Rank),
        ),
        (
            "edit one's own role",
            role(1, 9, Permissions::MANAGE_ROLES | Permissions::KICK),
            Err(Rank),
        ),
        ("delete a lower role", delete_role(2, 5), Ok(())),
        (
            "delete with a bit mod lacks",
            delete_role(5, 5),
            Err(CannotGrant),
        ),
        ("delete a higher role", delete_role(3, 5), Err(Rank)),
        (
            "delete an unknown role",
            delete_role(99, 5),
            Err(Value("unknown role")),
        ),
        (
            "delete carrying a bad rank",
            delete_role(2, 0),
            Err(Value("a role's rank is between 1 and the owner's")),
        ),
        (
            "@everyone gains a held bit",
            everyone(Permissions::DEFAULT_EVERYONE | Permissions::KICK),
            Ok(()),
        ),
        (
            "@everyone gains a bit mod lacks",
            everyone(Permissions::DEFAULT_EVERYONE | Permissions::BAN),
            Err(CannotGrant),
        ),
        (
            "@everyone loses a held bit",
            everyone(Permissions::ADD_REACTIONS),
            Ok(()),
        ),
        (
            "@everyone with a rank",
            Content::Role(RoleDef {
                role: RoleId::EVERYONE,
                name: "everyone".into(),
                rank: 1,
                permissions: Permissions::DEFAULT_EVERYONE,
                color: None,
                deleted: false,
            }),
            Err(Value("@everyone has rank 0 and cannot be deleted")),
        ),
        (
            "@everyone deleted",
            delete_role(0, 0),
            Err(Value("@everyone has rank 0 and cannot be deleted")),
        ),
    ];
    for (what, content, want) in cases {
        let (mut chain, _, moderator, _) = role_setup();
        let before = chain.room.state().clone();
        let got = chain.attempt(&moderator, content.clone());
        assert_eq!(got, want, "{what}");
        if got.is_err() {
            assert_eq!(
                chain.room.state().roles().count(),
                before.roles().count(),
                "{what}: refused changes nothing"
            );
        } else if let Content::Role(def) = &content {
            let role = chain.room.state().role(def.role);
            assert_eq!(role.is_none(), def.deleted, "{what}: applied");
            if let Some(role) = role {
                assert_eq!(
                    (role.rank, role.permissions),
                    (def.rank, def.permissions),
                    "{what}: S3"
                );
            }
        }
    }
    // A19: without `manage_roles`.
    let (mut chain, _, _, alice) = role_setup();
    assert_eq!(
        chain.attempt(&alice, role(4, 1, Permissions::NONE)),
        Err(MissingPermission(Permissions::MANAGE_ROLES))
    );
    // A24: a rank-0 member with `manage_roles` (via @everyone) cannot change even @everyone.
    let (mut chain, owner, _, alice) = role_setup();
    chain.push(
        &owner,
        everyone(Permissions::DEFAULT_EVERYONE | Permissions::MANAGE_ROLES),
    );
    assert_eq!(
        chain.attempt(
            &alice,
            everyone(Permissions::DEFAULT_EVERYONE | Permissions::MANAGE_ROLES)
        ),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&alice, role(9, 1, Permissions::NONE)),
        Err(Rank)
    );
}

#[test]
fn unknown_permission_bits_grant_nothing() {
    let (mut chain, owner, _, alice) = role_setup();
    chain.grant(
        &owner,
        &alice,
        7,
        3,
        Permissions(Permissions::MENTION_ROOM.0 | 1 << 40),
    );
    let permissions = chain.room.state().permissions(&alice.user());
    assert_eq!(
        permissions,
        Permissions::DEFAULT_EVERYONE | Permissions::MENTION_ROOM
    );
    // Kept as sent in the definition.
    assert_eq!(
        chain.room.state().role(RoleId(7)).unwrap().permissions.0 >> 40,
        1
    );
}

#[test]
fn a23_at_most_250_roles() {
    let owner = owner();
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    for id in 1..MAX_ROLES as u32 {
        chain.push(&owner, role(id, id, Permissions::NONE));
    }
    assert_eq!(chain.room.state().roles().count(), MAX_ROLES);
    assert_eq!(
        chain.attempt(&owner, role(1000, 5, Permissions::NONE)),
        Err(Value("too many roles"))
    );
    // Changing an existing one is still fine, and deleting makes room.
    assert_eq!(chain.attempt(&owner, role(3, 4, Permissions::KICK)), Ok(()));
    assert_eq!(chain.attempt(&owner, delete_role(3, 4)), Ok(()));
    assert_eq!(
        chain.attempt(&owner, role(1000, 5, Permissions::NONE)),
        Ok(())
    );
}

#[test]
fn a26_to_a31_member_roles() {
    // mod (rank 10: manage_roles, kick) sets alice's roles.
    let cases: Vec<(&str, Vec<u32>, Result<(), AuthError>)> = vec![
        ("a lower role with held bits", vec![2], Ok(())),
        ("a role above mod", vec![3], Err(CannotGrant)),
        (
            "a lower role with a bit mod lacks",
            vec![5],
            Err(CannotGrant),
        ),
        ("mod's own rank", vec![1], Err(CannotGrant)),
        (
            "unsorted",
            vec![4, 2],
            Err(Value("roles must be sorted and distinct")),
        ),
        (
            "duplicates",
            vec![2, 2],
            Err(Value("roles must be sorted and distinct")),
        ),
        ("@everyone", vec![0], Err(Value("@everyone is implicit"))),
        ("an unknown role", vec![77], Err(Value("unknown role"))),
        ("no change", vec![], Err(NoChange)),
    ];
    for (what, ids, want) in cases {
        let (mut chain, owner, moderator, alice) = role_setup();
        chain.push(&owner, role(4, 3, Permissions::NONE));
        let got = chain.attempt(&moderator, roles(&alice.user(), &ids));
        assert_eq!(got, want, "{what}");
        let held: Vec<u32> = chain
            .room
            .state()
            .roles_of(&alice.user())
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(
            held,
            if got.is_ok() { ids.clone() } else { vec![] },
            "{what}: S4"
        );
    }

    let (mut chain, owner, moderator, alice) = role_setup();
    // A26
    assert_eq!(
        chain.attempt(&alice, roles(&moderator.user(), &[2])),
        Err(MissingPermission(Permissions::MANAGE_ROLES))
    );
    // A27: joined or invited only.
    let bob = bob();
    assert_eq!(
        chain.attempt(&moderator, roles(&bob.user(), &[2])),
        Err(Target("roles go to members and invitees"))
    );
    chain.push(&owner, member(&bob.user(), Invite));
    assert_eq!(chain.attempt(&moderator, roles(&bob.user(), &[2])), Ok(()));
    // A28: nobody changes their own roles, nor the owner's, nor an equal's.
    assert_eq!(
        chain.attempt(&moderator, roles(&moderator.user(), &[1, 2])),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&moderator, roles(&owner.user(), &[2])),
        Err(Rank)
    );
    assert_eq!(chain.attempt(&owner, roles(&owner.user(), &[2])), Err(Rank));
    let peer = carol();
    chain.join(&owner, &peer);
    chain.grant(&owner, &peer, 6, 10, Permissions::NONE);
    assert_eq!(
        chain.attempt(&moderator, roles(&peer.user(), &[])),
        Err(Rank)
    );
    // A30 for removals: mod cannot take away a role it could not give.
    chain.grant(&owner, &alice, 5, 5, Permissions::BAN);
    assert_eq!(
        chain.attempt(&moderator, roles(&alice.user(), &[])),
        Err(CannotGrant)
    );
    // ...but removing a role whose definition was deleted is fine.
    chain.push(&owner, role(4, 3, Permissions::NONE));
    chain.push(&owner, roles(&alice.user(), &[4]));
    chain.push(&owner, delete_role(4, 3));
    assert_eq!(chain.attempt(&moderator, roles(&alice.user(), &[])), Ok(()));
    assert!(chain.room.state().roles_of(&alice.user()).is_empty());
    // A31: and the same list again changes nothing.
    assert_eq!(
        chain.attempt(&moderator, roles(&alice.user(), &[])),
        Err(NoChange)
    );
}

#[test]
fn s3_deleted_roles_grant_nothing_and_their_ids_are_not_reused() {
    let (mut chain, owner, _, alice) = role_setup();
    chain.grant(&owner, &alice, 8, 7, Permissions::MANAGE_MESSAGES);
    assert_eq!(chain.room.state().rank(&alice.user()), 7);
    chain.push(&owner, delete_role(8, 7));
    assert_eq!(chain.room.state().rank(&alice.user()), 0);
    assert!(
        !chain
            .room
            .state()
            .permissions(&alice.user())
            .contains(Permissions::MANAGE_MESSAGES)
    );
    assert_eq!(
        chain.room.state().roles_of(&alice.user()),
        &[RoleId(8)],
        "the list keeps it"
    );
    // Redefining id 8 would hand the new role back to alice: refused (A22).
    assert_eq!(
        chain.attempt(&owner, role(8, 6, Permissions::TIMEOUT)),
        Err(AuthError::Value("a deleted role's id is not reused"))
    );
    assert_eq!(chain.room.state().rank(&alice.user()), 0);
    // A fresh id is fine.
    assert_eq!(
        chain.attempt(&owner, role(9, 6, Permissions::TIMEOUT)),
        Ok(())
    );
}

#[test]
fn s2_leaving_drops_roles_but_keeps_the_timeout() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Public);
    chain.join(&owner, &alice);
    chain.grant(&owner, &alice, 1, 3, Permissions::KICK);
    chain.push(&owner, timeout(&alice.user(), chain.clock + 3_600_000));
    chain.push(&alice, member(&alice.user(), Leave));
    assert!(chain.room.state().roles_of(&alice.user()).is_empty());
    assert_eq!(chain.room.state().rank(&alice.user()), 0);
    let until = chain.room.state().timeout_until(&alice.user());
    assert!(until.is_some(), "a timeout survives leaving (auth.md S2)");
    // Rejoining does not lift it: still muted.
    chain.push(&alice, member(&alice.user(), Join));
    assert_eq!(
        chain.attempt(&alice, text("back")),
        Err(AuthError::TimedOut)
    );
    chain.push(&owner, timeout(&alice.user(), 0));
    assert_eq!(chain.attempt(&alice, text("back")), Ok(()));
    // A ban drops them too.
    chain.grant(&owner, &alice, 1, 3, Permissions::KICK);
    chain.push(&owner, member(&alice.user(), Ban));
    assert!(chain.room.state().roles_of(&alice.user()).is_empty());
}

#[test]
fn a18_everything_else_needs_a_joined_sender() {
    let (owner, alice) = (owner(), alice());
    for current in [None, Some(Invite), Some(Knock), Some(Leave), Some(Ban)] {
        let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
        bring(&mut chain, &owner, &alice, current);
        let hello = chain.push(&owner, text("hello"));
        for content in [
            text("hi"),
            react(hello.id(), "👍"),
            Content::Name("x".into()),
            role(1, 1, Permissions::NONE),
        ] {
            assert_eq!(
                chain.attempt(&alice, content),
                Err(NotMember),
                "{current:?}"
            );
        }
    }
}

#[test]
fn a32_to_a35_timeouts() {
    let (owner, alice, moderator) = (owner(), alice(), moderator());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    chain.join(&owner, &moderator);
    chain.grant(&owner, &moderator, 1, 10, Permissions::TIMEOUT);
    let until = chain.clock + 60_000;
    // A32
    assert_eq!(
        chain.attempt(&alice, timeout(&moderator.user(), until)),
        Err(MissingPermission(Permissions::TIMEOUT))
    );
    // A33
    assert_eq!(
        chain.attempt(&moderator, timeout(&bob().user(), until)),
        Err(Target("not a member"))
    );
    // A34
    assert_eq!(
        chain.attempt(&moderator, timeout(&owner.user(), until)),
        Err(Rank)
    );
    assert_eq!(
        chain.attempt(&moderator, timeout(&moderator.user(), until)),
        Err(Rank)
    );
    // A35: at most 28 days past the event's effective time.
    let event = chain.next(
        &moderator,
        timeout(&alice.user(), chain.clock + 1000 + MAX_TIMEOUT_MS + 1),
    );
    assert_eq!(
        chain.insert(&event),
        Err(Value("timeout longer than 28 days"))
    );
    let event = chain.next(
        &moderator,
        timeout(&alice.user(), chain.clock + 1000 + MAX_TIMEOUT_MS),
    );
    assert_eq!(chain.insert(&event), Ok(()));
    assert_eq!(
        chain.attempt(&moderator, timeout(&alice.user(), until)),
        Ok(())
    );
    assert_eq!(chain.room.state().timeout_until(&alice.user()), Some(until));
    // A time in the past is allowed and has no effect.
    assert_eq!(
        chain.attempt(&moderator, timeout(&alice.user(), T0)),
        Ok(())
    );
    assert_eq!(chain.attempt(&alice, text("free")), Ok(()));
    // 0 lifts (S5).
    chain.push(&moderator, timeout(&alice.user(), until));
    chain.push(&moderator, timeout(&alice.user(), 0));
    assert_eq!(chain.room.state().timeout_until(&alice.user()), None);
    assert_eq!(chain.attempt(&alice, text("free again")), Ok(()));
}

#[test]
fn a43_a49_a50_timed_out_until_the_effective_time_passes() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let own = chain.push(&alice, text("mine"));
    let until = chain.clock + 60_000;
    chain.push(&owner, timeout(&alice.user(), until));
    // Messages, reactions and edits are refused while timed out...
    assert_eq!(chain.attempt(&alice, text("let me speak")), Err(TimedOut));
    assert_eq!(chain.attempt(&alice, react(own.id(), "👍")), Err(TimedOut));
    assert_eq!(
        chain.attempt(&alice, edit(own.id(), "edited")),
        Err(TimedOut)
    );
    // ...at one millisecond before the end too...
    let event = chain.next_at(&alice, until - 1, text("almost"));
    assert_eq!(chain.insert(&event), Err(TimedOut));
    // ...but redactions are not restricted (A51), nor leaving.
    assert_eq!(chain.attempt(&alice, redact(own.id())), Ok(()));
    // Her own clock is behind, but effective time follows the parents: once
    // anyone's event after the end is an ancestor, she may speak again.
    chain.push_at(&owner, until, text("time's up"));
    let behind = chain.next_at(&alice, until - 30_000, text("finally"));
    assert_eq!(chain.room.check(&behind), Ok(None));
    assert_eq!(chain.insert(&behind), Ok(()));
    assert_eq!(
        chain.room.time_ms(&behind.id()),
        Some(until),
        "effective time = max(own clock, parents')"
    );
}

#[test]
fn effective_time_is_monotone_and_create_counts_as_zero() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Public);
    // docs/spec/auth.md#effective-time: the create event's effective time is 0.
    assert_eq!(chain.room.time_ms(&chain.create.id()), Some(0));
    chain.join(&owner, &alice);
    let ahead = chain.push_at(&owner, T0 + 500_000, text("from the future"));
    let behind = chain.push_at(&alice, T0 + 1, text("from the past"));
    assert_eq!(chain.room.time_ms(&ahead.id()), Some(T0 + 500_000));
    assert_eq!(chain.room.time_ms(&behind.id()), Some(T0 + 500_000));
    assert_eq!(behind.origin_ts(), T0 + 1, "the event keeps its own clock");
}

#[test]
fn a37_a44_slowmode() {
    let (owner, alice, bob) = (owner(), alice(), bob());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Public);
    chain.join(&owner, &alice);
    chain.join(&owner, &bob);
    // A37
    assert_eq!(
        chain.attempt(&alice, Content::Slowmode(Slowmode { seconds: 10 })),
        Err(MissingPermission(Permissions::MANAGE_ROOM))
    );
    assert_eq!(
        chain.attempt(
            &owner,
            Content::Slowmode(Slowmode {
                seconds: MAX_SLOWMODE_SECONDS + 1
            })
        ),
        Err(Value("slowmode longer than 6 hours"))
    );
    assert_eq!(
        chain.attempt(
            &owner,
            Content::Slowmode(Slowmode {
                seconds: MAX_SLOWMODE_SECONDS
            })
        ),
        Ok(())
    );
    chain.push(&owner, Content::Slowmode(Slowmode { seconds: 10 }));
    assert_eq!(chain.room.state().slowmode_seconds(), 10);
    // A44: the first message is free, the next must wait 10 s of effective time.
    let t = chain.clock + 100_000;
    let first = chain.push_at(&alice, t, text("one"));
    assert_eq!(
        chain.insert(&chain.next_at(&alice, t + 9_999, text("two"))),
        Err(AuthError::Slowmode)
    );
    // Other members and other kinds of event are not held back.
    chain.push_at(&bob, t + 1, text("bob talks"));
    chain.push_at(&alice, t + 2, react(first.id(), "👍"));
    chain.push_at(&alice, t + 3, edit(first.id(), "one!"));
    chain.push_at(&alice, t + 10_000, text("two"));
    // A refused message does not restart the interval: the last *accepted* one counts.
    assert_eq!(
        chain.insert(&chain.next_at(&alice, t + 15_000, text("three"))),
        Err(AuthError::Slowmode)
    );
    chain.push_at(&alice, t + 20_000, text("three"));
    // bypass_slowmode exempts.
    chain.grant(&owner, &alice, 1, 1, Permissions::BYPASS_SLOWMODE);
    chain.push_at(&alice, t + 20_001, text("four"));
    // The owner has every permission, bypass included.
    chain.push_at(&owner, t + 20_002, text("o1"));
    chain.push_at(&owner, t + 20_003, text("o2"));
    // 0 turns it off.
    chain.push_at(
        &owner,
        t + 20_004,
        Content::Slowmode(Slowmode { seconds: 0 }),
    );
    chain.push_at(&bob, t + 20_005, text("b2"));
    chain.push_at(&bob, t + 20_006, text("b3"));
}

#[test]
fn a36_a40_room_settings_need_manage_room() {
    let attachment = attachment(&owner().key);
    let link = SpaceLink {
        room: spaces_protocol::RoomId([9; 32]),
        via: vec![owner().key.node_id()],
        present: true,
    };
    let settings: Vec<Content> = vec![
        Content::Name("Lobby".into()),
        Content::Topic("All things".into()),
        Content::Avatar(Some(attachment.clone())),
        Content::JoinRule(JoinRule::Knock),
        Content::HistoryVisibility(HistoryVisibility::Joined),
        Content::Slowmode(Slowmode { seconds: 5 }),
        Content::Encryption(Encryption::Mls128X25519),
        Content::SpaceParent(link.clone()),
    ];
    let (owner, alice, moderator) = (owner(), alice(), moderator());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    chain.join(&owner, &moderator);
    chain.grant(&owner, &moderator, 1, 1, Permissions::MANAGE_ROOM);
    for content in &settings {
        let name = content.type_name();
        assert_eq!(
            chain.attempt(&alice, content.clone()),
            Err(MissingPermission(Permissions::MANAGE_ROOM)),
            "{name}"
        );
        assert_eq!(chain.attempt(&moderator, content.clone()), Ok(()), "{name}");
    }
    // S6–S10
    let state = chain.room.state();
    assert_eq!(state.name(), Some("Lobby"));
    assert_eq!(state.topic(), Some("All things"));
    assert_eq!(state.avatar(), Some(&attachment));
    assert_eq!(state.join_rule(), JoinRule::Knock);
    assert_eq!(state.history_visibility(), HistoryVisibility::Joined);
    assert_eq!(state.slowmode_seconds(), 5);
    assert_eq!(state.encryption(), Some(Encryption::Mls128X25519));
    assert_eq!(
        state.space_parents().collect::<Vec<_>>(),
        vec![(&link.room, &link.via[..])]
    );
    chain.push(&moderator, Content::Name(String::new()));
    chain.push(&moderator, Content::Topic(String::new()));
    chain.push(&moderator, Content::Avatar(None));
    chain.push(
        &moderator,
        Content::SpaceParent(SpaceLink {
            present: false,
            ..link
        }),
    );
    let state = chain.room.state();
    assert_eq!(
        (state.name(), state.topic(), state.avatar()),
        (None, None, None)
    );
    assert_eq!(state.space_parents().count(), 0);
}

#[test]
fn a37c_ban_lists_and_entries_need_ban_and_stay_bounded() {
    use spaces_protocol::content::{MAX_BAN_ENTRIES, MAX_BAN_PATTERNS};
    let (owner, alice, moderator) = (owner(), alice(), moderator());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    chain.join(&owner, &moderator);
    chain.grant(&owner, &moderator, 1, 1, Permissions::BAN);
    let entry = |target: BanTarget, present| {
        Content::BanEntry(BanEntry {
            target,
            recommendation: Recommendation::Ban,
            reason: "spam".into(),
            present,
        })
    };
    let spammer = BanTarget::User(carol().user());
    let lists = Content::BanLists(BanLists {
        lists: vec![spaces_protocol::RoomId([5; 32])],
    });
    for content in [entry(spammer.clone(), true), lists.clone()] {
        assert_eq!(
            chain.attempt(&alice, content.clone()),
            Err(MissingPermission(Permissions::BAN)),
            "{}",
            content.type_name()
        );
        assert_eq!(chain.attempt(&moderator, content), Ok(()));
    }
    let state = chain.room.state();
    assert_eq!(state.ban_lists(), &[spaces_protocol::RoomId([5; 32])]);
    assert_eq!(state.ban_entries().len(), 1);
    assert_eq!(state.ban_entries()[&spammer].reason, "spam");
    // Removing: only what is listed.
    assert_eq!(
        chain.attempt(
            &moderator,
            entry(BanTarget::Node(carol().key.node_id()), false)
        ),
        Err(NoChange)
    );
    assert_eq!(chain.attempt(&moderator, entry(spammer, false)), Ok(()));
    assert!(chain.room.state().ban_entries().is_empty());
    // At most MAX_BAN_PATTERNS patterns.
    for i in 0..MAX_BAN_PATTERNS {
        chain.push(
            &moderator,
            entry(BanTarget::Pattern(format!("@s{i}*")), true),
        );
    }
    assert_eq!(
        chain.attempt(&moderator, entry(BanTarget::Pattern("@more*".into()), true)),
        Err(Value("the ban list has too many patterns"))
    );
    // Replacing a listed pattern's reason is not a new entry.
    assert_eq!(
        chain.attempt(&moderator, entry(BanTarget::Pattern("@s0*".into()), true)),
        Ok(())
    );
    assert_eq!(
        (MAX_BAN_ENTRIES, MAX_BAN_PATTERNS),
        (4_096, 64),
        "docs/spec/auth.md#a37c"
    );
    // Shapes are limits.
    for (bad, why) in [
        (
            entry(BanTarget::Pattern(String::new()), true),
            "ban pattern empty or too long",
        ),
        (
            entry(BanTarget::Pattern("a\u{7}".into()), true),
            "ban pattern has control characters",
        ),
        (
            Content::BanLists(BanLists {
                lists: vec![spaces_protocol::RoomId([1; 32]); 2],
            }),
            "ban list listed twice",
        ),
        (
            Content::BanLists(BanLists {
                lists: (0..9).map(|i| spaces_protocol::RoomId([i; 32])).collect(),
            }),
            "too many ban lists",
        ),
    ] {
        assert_eq!(bad.check_limits(), Err(why));
    }
}

#[test]
fn a37d_automod_needs_manage_room_and_stays_bounded() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let rules = AutoMod {
        keywords: vec!["watches".into()],
        regexes: vec!["free\\s+crypto".into()],
        max_links: 1,
        max_mentions: 3,
    };
    assert_eq!(
        chain.attempt(&alice, Content::AutoMod(rules.clone())),
        Err(MissingPermission(Permissions::MANAGE_ROOM))
    );
    assert_eq!(
        chain.attempt(&owner, Content::AutoMod(rules.clone())),
        Ok(())
    );
    assert_eq!(chain.room.state().automod().map(|a| &**a), Some(&rules));
    // Empty rules turn it off.
    chain.push(&owner, Content::AutoMod(AutoMod::default()));
    assert_eq!(chain.room.state().automod(), None);
    for (bad, why) in [
        (
            AutoMod {
                keywords: vec![" ".into()],
                ..AutoMod::default()
            },
            "automod keyword empty or too long",
        ),
        (
            AutoMod {
                regexes: vec!["a".repeat(257)],
                ..AutoMod::default()
            },
            "automod regex empty or too long",
        ),
        (
            AutoMod {
                regexes: vec!["a".into(); 17],
                ..AutoMod::default()
            },
            "too many automod regexes",
        ),
        (
            AutoMod {
                keywords: vec!["a".into(); 65],
                ..AutoMod::default()
            },
            "too many automod keywords",
        ),
    ] {
        assert_eq!(Content::AutoMod(bad).check_limits(), Err(why));
    }
}

#[test]
fn a38_encryption_cannot_be_turned_off_or_changed() {
    let owner = owner();
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    assert_eq!(chain.room.state().encryption(), None);
    chain.push(&owner, Content::Encryption(Encryption::Mls128X25519));
    assert_eq!(
        chain.attempt(&owner, Content::Encryption(Encryption::Mls128X25519)),
        Err(Value("encryption cannot change once on"))
    );
    assert_eq!(
        chain.room.state().encryption(),
        Some(Encryption::Mls128X25519)
    );
}

#[test]
fn a39_space_children_only_in_spaces() {
    let owner = owner();
    let link = |present| SpaceLink {
        room: spaces_protocol::RoomId([3; 32]),
        via: vec![],
        present,
    };
    for kind in [RoomKind::Room, RoomKind::Direct] {
        let mut chain = Chain::new(&owner, kind, JoinRule::Invite);
        assert_eq!(
            chain.attempt(&owner, Content::SpaceChild(link(true))),
            Err(Value("only a space has child rooms")),
            "{kind:?}"
        );
        assert_eq!(
            chain.attempt(&owner, Content::SpaceParent(link(true))),
            Ok(()),
            "{kind:?}"
        );
    }
    let mut chain = Chain::new(&owner, RoomKind::Space, JoinRule::Invite);
    assert_eq!(
        chain.attempt(&owner, Content::SpaceChild(link(true))),
        Ok(())
    );
    assert_eq!(chain.room.state().space_children().count(), 1);
    assert_eq!(
        chain.attempt(&owner, Content::SpaceChild(link(false))),
        Ok(())
    );
    assert_eq!(chain.room.state().space_children().count(), 0);
    let alice = alice();
    chain.join(&owner, &alice);
    assert_eq!(
        chain.attempt(&alice, Content::SpaceChild(link(true))),
        Err(MissingPermission(Permissions::MANAGE_ROOM))
    );
}

#[test]
fn a41_pins() {
    let (owner, alice, moderator) = (owner(), alice(), moderator());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    chain.join(&owner, &moderator);
    chain.grant(&owner, &moderator, 1, 1, Permissions::MANAGE_MESSAGES);
    let message = chain.push(&alice, text("pin me"));
    let thread_reply = chain.push(&alice, in_thread("me too", message.id()));
    let reaction = chain.push(&alice, react(message.id(), "📌"));
    let state_event = chain.push(&owner, Content::Topic("t".into()));
    assert_eq!(
        chain.attempt(&alice, Content::Pins(vec![message.id()])),
        Err(MissingPermission(Permissions::MANAGE_MESSAGES))
    );
    assert_eq!(
        chain.attempt(
            &moderator,
            Content::Pins(vec![message.id(), thread_reply.id()])
        ),
        Ok(())
    );
    assert_eq!(
        chain.room.state().pins(),
        &[message.id(), thread_reply.id()]
    );
    assert_eq!(
        chain.attempt(&moderator, Content::Pins(vec![message.id(), reaction.id()])),
        Err(Target("not a message"))
    );
    assert_eq!(
        chain.attempt(&moderator, Content::Pins(vec![state_event.id()])),
        Err(Target("not a message"))
    );
    assert_eq!(chain.attempt(&moderator, Content::Pins(vec![])), Ok(()));
    assert!(chain.room.state().pins().is_empty());
}

#[test]
fn a42_to_a46_messages() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let at_room = Content::Message(Message {
        body: "@room look".into(),
        mentions: Mentions {
            room: true,
            ..Mentions::default()
        },
        ..Message::default()
    });
    let with_file = Content::Message(Message {
        attachments: vec![attachment(&alice.key)],
        ..Message::default()
    });
    // A45: @room needs mention_room, which @everyone lacks by default.
    assert_eq!(
        chain.attempt(&alice, at_room.clone()),
        Err(MissingPermission(Permissions::MENTION_ROOM))
    );
    assert_eq!(chain.attempt(&owner, at_room.clone()), Ok(()));
    // A46: attachments need attach_files, which @everyone has by default.
    assert_eq!(chain.attempt(&alice, with_file.clone()), Ok(()));
    // Mentions of users and roles need nothing and are not checked.
    let mention = Content::Message(Message {
        body: "hi".into(),
        mentions: Mentions {
            users: vec![carol().user()],
            roles: vec![RoleId(42)],
            room: false,
        },
        ..Message::default()
    });
    assert_eq!(chain.attempt(&alice, mention), Ok(()));
    // A42: take send_messages and attach_files away from @everyone.
    chain.push(
        &owner,
        everyone(Permissions::ADD_REACTIONS | Permissions::MENTION_ROOM),
    );
    assert_eq!(
        chain.attempt(&alice, text("hello?")),
        Err(MissingPermission(Permissions::SEND_MESSAGES))
    );
    chain.grant(&owner, &alice, 1, 1, Permissions::SEND_MESSAGES);
    assert_eq!(chain.attempt(&alice, text("hello")), Ok(()));
    assert_eq!(chain.attempt(&alice, at_room), Ok(()));
    assert_eq!(
        chain.attempt(&alice, with_file),
        Err(MissingPermission(Permissions::ATTACH_FILES))
    );
}

#[test]
fn a47_a48_replies_and_threads() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let root = chain.push(&owner, text("root"));
    let thread_reply = chain.push(&alice, in_thread("in thread", root.id()));
    let reaction = chain.push(&alice, react(root.id(), "👀"));
    let topic = chain.push(&owner, Content::Topic("t".into()));
    let cases: Vec<(&str, Content, Result<(), AuthError>)> = vec![
        ("reply to a message", reply("re", root.id()), Ok(())),
        (
            "reply to a thread reply",
            reply("re", thread_reply.id()),
            Ok(()),
        ),
        (
            "reply to a reaction",
            reply("re", reaction.id()),
            Err(Target("not a message")),
        ),
        (
            "reply to state",
            reply("re", topic.id()),
            Err(Target("not a message")),
        ),
        ("thread on a message", in_thread("t", root.id()), Ok(())),
        (
            "thread on a thread reply",
            in_thread("t", thread_reply.id()),
            Err(Target("a thread's root is not in a thread")),
        ),
        (
            "thread on a reaction",
            in_thread("t", reaction.id()),
            Err(Target("not a message")),
        ),
        (
            "thread reply that also replies",
            Content::Message(Message {
                body: "both".into(),
                reply_to: Some(thread_reply.id()),
                thread: Some(root.id()),
                ..Message::default()
            }),
            Ok(()),
        ),
    ];
    for (what, content, want) in cases {
        assert_eq!(chain.attempt(&alice, content), want, "{what}");
    }
}

#[test]
fn a49_reactions() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let message = chain.push(&owner, text("react to me"));
    let reaction = chain.push(&alice, react(message.id(), "👍"));
    let topic = chain.push(&owner, Content::Topic("t".into()));
    assert_eq!(
        chain.attempt(&alice, react(reaction.id(), "👍")),
        Err(Target("not a message"))
    );
    assert_eq!(
        chain.attempt(&alice, react(topic.id(), "👍")),
        Err(Target("not a message"))
    );
    assert_eq!(
        chain.attempt(&alice, react(message.id(), "👍")),
        Ok(()),
        "no deduplication"
    );
    chain.push(&owner, everyone(Permissions::SEND_MESSAGES));
    assert_eq!(
        chain.attempt(&alice, react(message.id(), "🎉")),
        Err(MissingPermission(Permissions::ADD_REACTIONS))
    );
}

#[test]
fn a50_edits_only_own_messages() {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
    chain.join(&owner, &alice);
    let mine = chain.push(&alice, text("mine"));
    let theirs = chain.push(&owner, text("theirs"));
    let thread_reply = chain.push(&alice, in_thread("mine in a thread", theirs.id()));
    let my_edit = chain.push(&alice, edit(mine.id(), "mine!"));
    let cases: Vec<(&str, Content, Result<(), AuthError>)> = vec![
        ("own message", edit(mine.id(), "again"), Ok(())),
        ("own thread reply", edit(thread_reply.id(), "x"), Ok(())),
        (
            "someone else's",
            edit(theirs.id(), "hijack"),
            Err(Target("only the sender edits a message")),
        ),
        (
            "an edit",
            edit(my_edit.id(), "x"),
            Err(Target("not a message")),
        ),
        (
            "unknown in this room",
            edit(spaces_protocol::EventId([1; 32]), "x"),
            Err(Target("unknown or refused event")),
        ),
    ];
    for (what, content, want) in cases {
        let event = chain.next(&alice, content);
        let got = match chain.room.insert(event) {
            Err(InsertError::Rejected(Rejection::UnknownReference(_))) => {
                Err(Target("unknown or refused event"))
            }
            Err(InsertError::Rejected(Rejection::Unauthorized(e))) => Err(e),
            Ok(_) => Ok(()),
            other => panic!("{what}: {other:?}"),
        };
        assert_eq!(got, want, "{what}");
    }
    // An edit needs what sending would (A50): an @room needs mention_room,
    // and without send_messages there is no editing either.
    let mut loud = match edit(mine.id(), "everyone look") {
        Content::Edit(e) => e,
        _ => unreachable!(),
    };
    loud.mentions.room = true;
    assert_eq!(
        chain.attempt(&alice, Content::Edit(loud)),
        Err(AuthError::MissingPermission(Permissions::MENTION_ROOM))
    );
    chain.push(&owner, everyone(Permissions::NONE));
    assert_eq!(
        chain.attempt(&alice, edit(mine.id(), "still mine")),
        Err(AuthError::MissingPermission(Permissions::SEND_MESSAGES))
    );
}

#[test]
fn a51_redactions() {
    let (owner, alice, bob, moderator) = (owner(), alice(), bob(), moderator());
    let setup = || {
        let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Invite);
        for who in [&alice, &bob, &moderator] {
            chain.join(&owner, who);
        }
        chain.grant(&owner, &moderator, 1, 10, Permissions::MANAGE_MESSAGES);
        let alices = chain.push(&alice, text("alice's"));
        let owners = chain.push(&owner, text("owner's"));
        let reaction = chain.push(&alice, react(owners.id(), "👍"));
        let alices_edit = chain.push(&alice, edit(alices.id(), "alice's!"));
        let topic = chain.push(&owner, Content::Topic("t".into()));
        let redaction = chain.push(&alice, redact(reaction.id()));
        (
            chain,
            [alices, owners, reaction, alices_edit, topic, redaction],
        )
    };
    let [alices, owners, reaction, alices_edit, topic, redaction] = setup().1.map(|e| e.id());
    let cases: Vec<(
        &str,
        &Author,
        spaces_protocol::EventId,
        Result<(), AuthError>,
    )> = vec![
        ("own message", &alice, alices, Ok(())),
        ("own edit", &alice, alices_edit, Ok(())),
        ("own (already redacted) reaction", &alice, reaction, Ok(())),
        (
            "someone else's, without manage_messages",
            &bob,
            alices,
            Err(MissingPermission(Permissions::MANAGE_MESSAGES)),
        ),
        ("someone else's, as moderator", &moderator, alices, Ok(())),
        (
            "someone else's reaction, as moderator",
            &moderator,
            reaction,
            Ok(()),
        ),
        ("the owner's, as moderator", &moderator, owners, Err(Rank)),
        (
            "a state event",
            &owner,
            topic,
            Err(Target("state events and redactions cannot be redacted")),
        ),
        (
            "a redaction",
            &owner,
            redaction,
            Err(Target("state events and redactions cannot be redacted")),
        ),
    ];
    for (what, who, target, want) in cases {
        let (mut chain, _) = setup();
        assert_eq!(chain.attempt(who, redact(target)), want, "{what}");
    }
    // A redactor equal in rank to the target's sender is refused.
    let (mut chain, _) = setup();
    chain.grant(&owner, &alice, 2, 10, Permissions::NONE);
    assert_eq!(chain.attempt(&moderator, redact(alices)), Err(Rank));
}

#[test]
fn error_codes_are_distinct_and_stable() {
    let all = [
        (NoCreate, "no_create"),
        (DuplicateCreate, "duplicate_create"),
        (NotMember, "not_member"),
        (Banned, "banned"),
        (AuthError::JoinRule, "join_rule"),
        (MissingPermission(Permissions::KICK), "missing_permission"),
        (Rank, "rank"),
        (CannotGrant, "cannot_grant"),
        (TimedOut, "timed_out"),
        (AuthError::Slowmode, "slowmode"),
        (Target("x"), "bad_target"),
        (Value("x"), "bad_value"),
        (NoChange, "no_change"),
    ];
    for (error, code) in &all {
        assert_eq!(error.code(), *code);
        // Rejection passes the auth code through (encoding.md: no `unauthorized` code).
        assert_eq!(Rejection::Unauthorized(error.clone()).code(), *code);
        assert!(!error.to_string().is_empty());
    }
    let mut codes: Vec<_> = all.iter().map(|(e, _)| e.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    assert_eq!(
        MissingPermission(Permissions::KICK).to_string(),
        "sender lacks the {\"kick\"} permission"
    );
}
