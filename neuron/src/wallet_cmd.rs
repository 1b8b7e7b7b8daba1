//! `neuron wallet …`: bittensor-compatible wallets (the logic lives in `chain::wallet`).

use anyhow::{bail, Context};
use chain::wallet::{self, Keypair, PasswordSource, Wallet, WalletError};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Which wallet to use, named as btcli names it.
#[derive(Debug, Clone, Args)]
pub struct WalletArgs {
    /// Wallet name: a folder under --wallet.path [env: BT_WALLET_NAME; default: default]
    #[arg(long = "wallet.name", value_name = "NAME")]
    pub name: Option<String>,
    /// Hotkey name: a file under <wallet>/hotkeys [env: BT_WALLET_HOTKEY; default: default]
    #[arg(long = "wallet.hotkey", value_name = "HOTKEY")]
    pub hotkey: Option<String>,
    /// Folder holding wallets [env: BT_WALLET_PATH; default: ~/.bittensor/wallets]
    #[arg(long = "wallet.path", value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// File whose first line is the coldkey password (else the BT_PW_<PATH> variable, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Never prompt for a password: fail instead
    #[arg(long)]
    pub no_prompt: bool,
}

impl WalletArgs {
    pub fn wallet(&self) -> anyhow::Result<Wallet> {
        Ok(Wallet::resolve(self.name.as_deref(), self.hotkey.as_deref(), self.path.as_deref())?)
    }

    pub fn password(&self) -> PasswordSource {
        match &self.password_file {
            Some(f) => PasswordSource::from_file(f),
            None => PasswordSource { file: None, no_prompt: self.no_prompt },
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a wallet: an encrypted coldkey (unless --no-password) and a plain hotkey, in
    /// bittensor's file format. Keys that already exist are kept unless --overwrite.
    New {
        #[command(flatten)]
        wallet: WalletArgs,
        /// Words of new recovery phrases (12, 15, 18, 21 or 24)
        #[arg(long, default_value_t = 12)]
        words: usize,
        /// Store the coldkey unencrypted (local test chains only)
        #[arg(long)]
        no_password: bool,
        /// Make the coldkey from a secret URI instead of a new phrase (e.g. //Alice on a dev chain)
        #[arg(long, value_name = "URI")]
        coldkey_uri: Option<String>,
        /// Make the hotkey from a secret URI instead of a new phrase
        #[arg(long, value_name = "URI")]
        hotkey_uri: Option<String>,
        /// Replace existing key files
        #[arg(long)]
        overwrite: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List the wallets under --wallet.path with their addresses (nothing is decrypted)
    List {
        /// Folder holding wallets [env: BT_WALLET_PATH; default: ~/.bittensor/wallets]
        #[arg(long = "wallet.path", value_name = "PATH")]
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Show one wallet's coldkey and hotkey addresses
    Show {
        #[command(flatten)]
        wallet: WalletArgs,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: WalletCommand) -> anyhow::Result<()> {
    match cmd {
        WalletCommand::New { wallet, words, no_password, coldkey_uri, hotkey_uri, overwrite, json } => {
            create(wallet, words, no_password, (coldkey_uri, hotkey_uri), overwrite, json)
        }
        WalletCommand::List { path, json } => list(path, json),
        WalletCommand::Show { wallet, json } => {
            let w = wallet.wallet()?;
            let info = w.info();
            let hotkey = w.hotkey_public().ok().map(|k| k.ss58());
            if json {
                let out = serde_json::json!({
                    "name": w.name, "path": w.dir(), "coldkey": info.coldkey,
                    "hotkey_name": w.hotkey, "hotkey": hotkey, "hotkeys": info.hotkeys,
                });
                println!("{out}");
            } else {
                println!("wallet {} at {}", w.name, w.dir().display());
                println!("  coldkey {}", info.coldkey.ss58.as_deref().unwrap_or("(none)"));
                println!("  hotkey  {} ({})", hotkey.as_deref().unwrap_or("(none)"), w.hotkey);
            }
            Ok(())
        }
    }
}

/// `wallet new`: creates the coldkey and hotkey that do not exist yet (or all, with `--overwrite`).
fn create(
    wallet: WalletArgs,
    words: usize,
    no_password: bool,
    (coldkey_uri, hotkey_uri): (Option<String>, Option<String>),
    overwrite: bool,
    json: bool,
) -> anyhow::Result<()> {
    let w = wallet.wallet()?;
    let mut created = Vec::new();
    let mut phrases = Vec::new();
    let make = |uri: &Option<String>| -> anyhow::Result<Keypair> {
        Ok(match uri {
            Some(u) => Keypair::from_uri(u)?,
            None => Keypair::generate(words)?,
        })
    };
    if overwrite || !w.coldkey_path().exists() && !w.coldkeypub_path().exists() {
        let key = make(&coldkey_uri)?;
        let password = if no_password { None } else { Some(wallet.password().new_password(&w.coldkey_path())?) };
        w.write_coldkey(&key, password.as_ref().map(|p| p.as_str()), overwrite)
            .with_context(|| format!("writing the coldkey of wallet {}", w.name))?;
        created.push("coldkey");
        if let Some(p) = key.phrase() {
            phrases.push(("coldkey", p.to_string()));
        }
    }
    if overwrite || !w.hotkey_path().exists() {
        let key = make(&hotkey_uri)?;
        w.write_hotkey(&key, None, overwrite)
            .with_context(|| format!("writing hotkey {} of wallet {}", w.hotkey, w.name))?;
        created.push("hotkey");
        if let Some(p) = key.phrase() {
            phrases.push(("hotkey", p.to_string()));
        }
    }
    if created.is_empty() {
        bail!(WalletError::Exists(w.hotkey_path()));
    }
    let coldkey = w.coldkey_public()?.ss58();
    let hotkey = w.hotkey_public()?.ss58();
    if json {
        let out = serde_json::json!({
            "name": w.name, "hotkey_name": w.hotkey, "path": w.dir(),
            "coldkey": coldkey, "hotkey": hotkey, "created": created,
        });
        println!("{out}");
    } else {
        println!("wallet {} at {}", w.name, w.dir().display());
        println!("  coldkey {coldkey}");
        println!("  hotkey  {hotkey} ({})", w.hotkey);
        for (which, phrase) in phrases {
            eprintln!("{which} recovery phrase (write it down; anyone holding it owns the key):\n  {phrase}");
        }
    }
    Ok(())
}

/// `wallet list`: every wallet under `path` (the default folder without it).
fn list(path: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let root = path.map(Ok).unwrap_or_else(|| -> anyhow::Result<PathBuf> {
        Ok(Wallet::resolve(Some(wallet::DEFAULT_NAME), None, None)?.path)
    })?;
    let list = wallet::list_wallets(&root)?;
    if json {
        println!("{}", serde_json::to_string(&list)?);
    } else if list.is_empty() {
        println!("no wallets under {}", wallet::expand_home(&root).display());
    } else {
        for w in list {
            let enc = |e: Option<wallet::Encryption>| match e {
                Some(wallet::Encryption::None) => "plain",
                Some(wallet::Encryption::Nacl) => "encrypted",
                Some(_) => "legacy-encrypted",
                None => "public only",
            };
            println!(
                "{}  coldkey {} ({})",
                w.name,
                w.coldkey.ss58.as_deref().unwrap_or("?"),
                enc(w.coldkey.encryption)
            );
            for h in w.hotkeys {
                println!("  {}  {} ({})", h.name, h.ss58.as_deref().unwrap_or("?"), enc(h.encryption));
            }
        }
    }
    Ok(())
}
