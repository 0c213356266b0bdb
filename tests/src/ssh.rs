//! A real OpenSSH sshd on a loopback port, for logins through the real
//! `ssh` client (driven on a terminal by [`crate::pty::Pty`]) and the real
//! `sudo` inside them.
//!
//! sshd runs in a private mount namespace (`unshare --mount`) in which a
//! directory of the test is bind-mounted over /etc/pam.d, and files of the
//! test over /etc/sudoers and /etc/sudoers.d: sshd, and every session and
//! sudo under it, see only the test's PAM and sudo configuration, while the
//! host's files are never changed. sshd has its own config, host key and
//! authorized keys, listens on 127.0.0.1 only, and dies with the test.

use crate::TestDaemon;
use crate::pty::Pty;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PAM stacks and sudo rules a server is started with.
#[derive(Debug, Clone)]
pub struct Stacks {
    /// /etc/pam.d/sshd
    pub sshd: String,
    /// /etc/pam.d/sudo
    pub sudo: String,
    /// Lines for /etc/sudoers, after the defaults.
    pub sudoers: String,
}

impl Stacks {
    /// pam_mfa.so for sshd (auth, and session after pam_loginuid) and sudo,
    /// as README.md tells admins, against `d`.
    pub fn mfa(d: &TestDaemon) -> Stacks {
        let module = d.module_line(&[]);
        Stacks {
            sshd: format!(
                "auth     requisite  {module}\n\
                 account  required   pam_permit.so\n\
                 session  required   pam_loginuid.so\n\
                 session  optional   {module}\n\
                 session  required   pam_permit.so\n"
            ),
            // The session line too, as pam-auth-update's profile puts it
            // in common-session: a sudo inside a login records nothing.
            sudo: format!(
                "auth     requisite  {module}\n\
                 account  required   pam_permit.so\n\
                 session  optional   {module}\n\
                 session  required   pam_permit.so\n"
            ),
            sudoers: String::new(),
        }
    }

    /// The same sshd stack without pam_mfa.so (keyboard-interactive with no
    /// prompt): the baseline of the benchmark.
    pub fn without_mfa() -> Stacks {
        Stacks {
            sshd: "auth     required   pam_permit.so\n\
                   account  required   pam_permit.so\n\
                   session  required   pam_loginuid.so\n\
                   session  required   pam_permit.so\n"
                .to_owned(),
            sudo: "auth required pam_deny.so\naccount required pam_deny.so\n".to_owned(),
            sudoers: String::new(),
        }
    }

    /// Lets `user` run anything with sudo, asking every time.
    pub fn sudo_for(mut self, user: &str) -> Stacks {
        let _ = writeln!(self.sudoers, "{user} ALL=(ALL:ALL) ALL");
        self
    }
}

pub struct SshServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// A client key pair in the server's directory.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub private: PathBuf,
    /// The `authorized_keys` line.
    pub public: String,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

impl SshServer {
    /// Starts sshd with `stacks`; waits until it accepts connections.
    pub fn start(stacks: &Stacks) -> SshServer {
        crate::require_root();
        for program in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/sudo"] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: run `scripts/deps test` (openssh-server, openssh-client, sudo)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("mfad-sshd-")
            .tempdir()
            .expect("create the sshd directory");
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["pam.d", "sudoers.d", "keys", "client"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
        }
        std::fs::write(root.join("pam.d/sshd"), &stacks.sshd).expect("write pam.d/sshd");
        std::fs::write(root.join("pam.d/sudo"), &stacks.sudo).expect("write pam.d/sudo");
        let sudoers = root.join("sudoers");
        std::fs::write(
            &sudoers,
            format!(
                "Defaults env_reset, timestamp_timeout=0, passwd_tries=1, !lecture, !fqdn, !mail_badpass\n\
                 root ALL=(ALL:ALL) ALL\n{}",
                stacks.sudoers
            ),
        )
        .expect("write sudoers");
        std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440)).expect("chmod");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(root.join("host_key")));
        let port = free_port();
        std::fs::write(
            root.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\nPidFile none\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n\
                 AuthorizedKeysFile {root}/keys/%u\nStrictModes no\nPermitRootLogin no\n\
                 UseDNS no\nLogLevel VERBOSE\nPrintMotd no\nLoginGraceTime 60\nMaxStartups 50\n",
                root = root.display()
            ),
        )
        .expect("write sshd_config");
        let host_pub = std::fs::read_to_string(root.join("host_key.pub")).expect("host key");
        std::fs::write(
            root.join("client/known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .expect("write known_hosts");
        // sshd's privilege separation directory (Debian's ssh.service makes it).
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let log = std::fs::File::create(root.join("sshd.log")).expect("sshd.log");
        let mounts = format!(
            "mount --bind {r}/pam.d /etc/pam.d && mount --bind {r}/sudoers /etc/sudoers && \
             {{ [ ! -d /etc/sudoers.d ] || mount --bind {r}/sudoers.d /etc/sudoers.d; }} && \
             exec /usr/sbin/sshd -D -e -f {r}/sshd_config",
            r = root.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &mounts])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and allocates nothing; sshd then
        // dies with the test thread that started it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start sshd");
        let server = SshServer {
            dir,
            port,
            child: Some(child),
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains("Server listening") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not start; its log:\n{}", self.log());
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// A new client key pair (ed25519), not yet authorized for anyone.
    pub fn new_key(&self, name: &str) -> ClientKey {
        let private = self.dir().join("client").join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private));
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .expect("read the public key")
            .trim()
            .to_owned();
        ClientKey { private, public }
    }

    /// Adds `key` to the authorized keys of `user`.
    pub fn authorize(&self, user: &str, key: &ClientKey) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("keys").join(user))
            .expect("open the authorized keys");
        writeln!(f, "{}", key.public).expect("write the authorized keys");
    }

    /// `user` logged in to a shell from 127.0.0.1 with a new key and the
    /// current TOTP code of `secret` (enrolled with `d`): the ssh client,
    /// at the shell's first prompt.
    pub fn shell(&self, d: &TestDaemon, user: &str, secret: &str) -> Pty {
        let key = self.new_key("laptop");
        self.authorize(user, &key);
        let mut ssh = self.ssh(user, &key, "127.0.0.1", "");
        ssh.expect("Verification code: ");
        ssh.send_line(&d.totp_code(secret, 0));
        // Type only at the prompt: ssh flushes input typed during the code.
        ssh.expect("$ ");
        ssh
    }

    /// The real `ssh` client for `user` with `key`, on a terminal, from
    /// source address `from` (any 127.x address), running `command` (a
    /// remote shell when empty).
    pub fn ssh(&self, user: &str, key: &ClientKey, from: &str, command: &str) -> Pty {
        let mut cmd = Command::new("/usr/bin/ssh");
        // A UTF-8 terminal, as people have: ssh shows prompts' UTF-8 (the
        // QR code of enrollment at login) only in a UTF-8 locale.
        cmd.env("LC_ALL", "C.UTF-8");
        cmd.args([
            "-F",
            "/dev/null",
            "-tt",
            "-p",
            &self.port.to_string(),
            "-b",
            from,
        ])
        .arg("-i")
        .arg(&key.private)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=no"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            self.dir().join("client/known_hosts").display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@127.0.0.1"));
        if !command.is_empty() {
            cmd.arg(command);
        }
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TERM", "dumb");
        Pty::spawn(cmd)
    }

    /// Every process below sshd (the sessions).
    fn descendants(&self) -> Vec<i32> {
        let Some(root) = self.child.as_ref().map(|c| c.id() as i32) else {
            return Vec::new();
        };
        let parent = |pid: i32| -> Option<i32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
        };
        let pids: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        pids.into_iter()
            .filter(|&p| {
                let mut cur = p;
                for _ in 0..64 {
                    match parent(cur) {
                        Some(pp) if pp == root => return true,
                        Some(pp) if pp > 1 => cur = pp,
                        _ => return false,
                    }
                }
                false
            })
            .collect()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Sessions outlive the listener: end them first, then sshd.
        for pid in self.descendants() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- sshd log ---\n{}", self.log());
        }
    }
}
