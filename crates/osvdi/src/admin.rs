//! `osvdi admin ...`: accounts and groups, straight into the database through the core (so
//! the same rules and the same audit log apply as over the API).

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;
use osvdi_core::{Caller, generate_password};
use osvdi_model::Role;

use crate::SiteArgs;
use crate::config::Site;

#[derive(Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Create an account. Without --password-stdin a password is generated and printed.
    Create {
        name: String,
        /// user, steward or admin.
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Change an account's role.
    SetRole { name: String, role: String },
    /// Set an account's password (ends its sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// Create a group.
    Create { name: String },
    /// Add a user to a group.
    Add { group: String, user: String },
    /// Remove a user from a group.
    Remove { group: String, user: String },
    /// List groups and members.
    List,
    /// Delete a group.
    Delete { name: String },
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok((pw, false))
}

fn operator() -> Caller {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    Caller::operator(&who)
}

pub(crate) async fn run(site: SiteArgs, command: AdminCommand) -> anyhow::Result<()> {
    let site = Site::resolve(&site)?;
    let core = site.open_core().await?;
    let caller = operator();
    match command {
        AdminCommand::User { command } => match command {
            UserCommand::Create {
                name,
                role,
                password_stdin,
            } => {
                let role: Role = role.parse()?;
                let (pw, generated) = read_password(password_stdin)?;
                let user = core.create_user(&caller, &name, role, &pw).await?;
                println!(
                    "Created user {} ({}) with id {}",
                    user.name, user.role, user.id
                );
                if generated {
                    println!("Password: {pw}");
                }
            }
            UserCommand::List => {
                for u in core.list_users(&caller).await? {
                    println!("{:<24} {:<8} {}", u.name, u.role, u.id);
                }
            }
            UserCommand::SetRole { name, role } => {
                let user = core.user_by_name(&caller, &name).await?;
                let user = core.set_role(&caller, user.id, role.parse()?).await?;
                println!("User {} is now {}", user.name, user.role);
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let user = core.user_by_name(&caller, &name).await?;
                let (pw, generated) = read_password(password_stdin)?;
                core.reset_password(&caller, user.id, &pw).await?;
                println!(
                    "Password of {} changed; their sessions have ended",
                    user.name
                );
                if generated {
                    println!("Password: {pw}");
                }
            }
            UserCommand::Delete { name } => {
                let user = core.user_by_name(&caller, &name).await?;
                core.delete_user(&caller, user.id).await?;
                println!("Deleted user {name}");
            }
        },
        AdminCommand::Group { command } => match command {
            GroupCommand::Create { name } => {
                let g = core.create_group(&caller, &name).await?;
                println!("Created group {} with id {}", g.name, g.id);
            }
            GroupCommand::Add { group, user } => {
                let added = core.add_member(&caller, &group, &user).await?;
                println!(
                    "{user} {} member of {group}",
                    if added { "is now a" } else { "already was a" }
                );
            }
            GroupCommand::Remove { group, user } => {
                let removed = core.remove_member(&caller, &group, &user).await?;
                println!(
                    "{user} {} member of {group}",
                    if removed {
                        "is no longer a"
                    } else {
                        "was not a"
                    }
                );
            }
            GroupCommand::List => {
                for g in core.list_groups(&caller).await? {
                    println!("{:<24} {}", g.group.name, g.members.join(", "));
                }
            }
            GroupCommand::Delete { name } => {
                core.delete_group(&caller, &name).await?;
                println!("Deleted group {name}");
            }
        },
    }
    core.store().close().await;
    Ok(())
}
