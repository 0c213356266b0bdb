//! [`Slapd`]: a real OpenLDAP server for the directory tests, started by the
//! test in a temporary directory with its own `slapd.conf`, on loopback
//! ports only, with the memberOf overlay and TLS (ldaps and StartTLS) from a
//! test CA made with openssl. Entries are added through `ldapadd` while it
//! runs, so the overlay writes `memberOf` as a directory in service would.
//! Needs the Debian packages `slapd`, `ldap-utils` and `openssl`; the
//! host's own slapd is never touched.

use crate::certs::{make_certs, run};
use crate::smtp::free_port;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const BASE: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PW: &str = "admin-secret";
/// The account mfad binds as; only it (and the admin) may read entries.
pub const BIND_DN: &str = "cn=mfad,dc=example,dc=org";
pub const BIND_PW: &str = "mfad-bind-secret";

/// The schema the directory is shaped like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `uid=NAME,ou=people`, inetOrgPerson, groupOfNames under ou=groups.
    Posix,
    /// Active Directory's names: `CN=NAME,OU=Users`, `sAMAccountName`,
    /// groups under OU=Groups, `memberOf` on the user.
    Ad,
}

/// sAMAccountName as AD defines it (its OID), on an auxiliary class.
const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'mfadTestAdAccount' SUP top AUXILIARY
  MAY sAMAccountName )
";

pub struct Slapd {
    dir: TempDir,
    child: Option<Child>,
    shape: Shape,
    pub ldap_port: u16,
    pub ldaps_port: u16,
}

impl Slapd {
    pub fn start(shape: Shape) -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("mfad-slapd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        make_certs(d, "");
        fs::create_dir(d.join("db")).unwrap();
        fs::write(d.join("ad.schema"), AD_SCHEMA).unwrap();
        let path = |name: &str| d.join(name).display().to_string();
        let mut conf = String::new();
        for schema in ["core", "cosine", "nis", "inetorgperson"] {
            let _ = writeln!(conf, "include /etc/ldap/schema/{schema}.schema");
        }
        if shape == Shape::Ad {
            let _ = writeln!(conf, "include {}", path("ad.schema"));
        }
        let _ = write!(
            conf,
            "pidfile {pid}\nargsfile {args}\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             moduleload memberof\nTLSCACertificateFile {ca}\nTLSCertificateFile {cert}\n\
             TLSCertificateKeyFile {key}\nTLSVerifyClient allow\n\
             authz-regexp \"^cn=mfad-client$\" \"{BIND_DN}\"\ndatabase mdb\nsuffix \"{BASE}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PW}\ndirectory {db}\noverlay memberof\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by dn.exact=\"{BIND_DN}\" read by * none\n",
            pid = path("slapd.pid"),
            args = path("slapd.args"),
            ca = path("ca.pem"),
            cert = path("server.pem"),
            key = path("server.key"),
            db = path("db"),
        );
        fs::write(d.join("slapd.conf"), conf).unwrap();
        let mut slapd = Slapd {
            dir,
            child: None,
            shape,
            ldap_port: free_port(),
            ldaps_port: free_port(),
        };
        slapd.launch();
        let (people, groups) = slapd.ous();
        slapd.add(&format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: {BIND_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: mfad\nsn: mfad\n\
             userPassword: {BIND_PW}\n\n\
             dn: {people},{BASE}\nobjectClass: organizationalUnit\nou: {}\n\n\
             dn: {groups},{BASE}\nobjectClass: organizationalUnit\nou: {}\n",
            &people[3..],
            &groups[3..]
        ));
        slapd
    }

    fn ous(&self) -> (&'static str, &'static str) {
        match self.shape {
            Shape::Posix => ("ou=people", "ou=groups"),
            Shape::Ad => ("OU=Users", "OU=Groups"),
        }
    }

    /// Starts slapd in the foreground (`-d 0`), so this harness owns the
    /// process, and waits until it answers on its port.
    fn launch(&mut self) {
        let d = self.dir.path();
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.ldap_port, self.ldaps_port
            ))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(fs::File::create(d.join("slapd.log")).unwrap()))
            .spawn()
            .expect("start /usr/sbin/slapd (Debian package slapd; scripts/deps test)");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.ldap_port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("slapd exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "slapd did not listen within 10 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Adds LDIF entries as the directory's admin.
    pub fn add(&self, ldif: &str) {
        let mut child = Command::new("ldapadd")
            .args(["-x", "-H"])
            .arg(format!("ldap://127.0.0.1:{}", self.ldap_port))
            .args(["-D", ADMIN_DN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ldapadd (Debian package ldap-utils)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd failed: {}\n{}\n{ldif}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DN of user `name` in this shape.
    pub fn user_dn(&self, name: &str) -> String {
        match self.shape {
            Shape::Posix => format!("uid={name},ou=people,{BASE}"),
            Shape::Ad => format!("CN={name},OU=Users,{BASE}"),
        }
    }

    /// A person with an optional mobile number and mail address.
    pub fn add_user(&self, name: &str, mobile: Option<&str>, mail: Option<&str>) {
        let mut ldif = format!(
            "dn: {}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n",
            self.user_dn(name)
        );
        match self.shape {
            Shape::Posix => {
                let _ = writeln!(ldif, "uid: {name}");
            }
            Shape::Ad => {
                let _ = writeln!(
                    ldif,
                    "objectClass: mfadTestAdAccount\nsAMAccountName: {name}"
                );
            }
        }
        if let Some(m) = mobile {
            let _ = writeln!(ldif, "mobile: {m}");
        }
        if let Some(m) = mail {
            let _ = writeln!(ldif, "mail: {m}");
        }
        self.add(&ldif);
    }

    /// A groupOfNames holding `members` (user names); the overlay then
    /// lists it in each member's `memberOf`.
    pub fn add_group(&self, name: &str, members: &[&str]) {
        let (_, groups) = self.ous();
        let mut ldif =
            format!("dn: cn={name},{groups},{BASE}\nobjectClass: groupOfNames\ncn: {name}\n");
        for m in members {
            let _ = writeln!(ldif, "member: {}", self.user_dn(m));
        }
        self.add(&ldif);
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Another CA's certificate, which did not sign this server's.
    pub fn other_ca_file(&self) -> PathBuf {
        let d = self.dir.path();
        if !d.join("other-ca.pem").exists() {
            make_certs(d, "other-");
        }
        d.join("other-ca.pem")
    }

    /// A client certificate for SASL EXTERNAL, signed by the test CA:
    /// slapd maps its subject to the bind account. (cert, key) files.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let (cert, key) = (d.join("client.pem"), d.join("client.key"));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(
            Command::new("openssl")
                .args(["req", "-subj", "/CN=mfad-client"])
                .args(ec)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(d.join("client.csr")),
            "openssl: the client key",
        );
        fs::write(
            d.join("client-ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(d.join("client.csr"))
                .arg("-CA")
                .arg(d.join("ca.pem"))
                .arg("-CAkey")
                .arg(d.join("ca.key"))
                .arg("-extfile")
                .arg(d.join("client-ext.cnf"))
                .arg("-out")
                .arg(&cert),
            "openssl: the client certificate",
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        (cert, key)
    }

    /// The bind password in a file private to root, as mfad demands.
    pub fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("bind.pw");
        fs::write(&path, format!("{BIND_PW}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A `[directory]` table for mfad: ldaps with the test CA, the bind
    /// account, the shape's user filter, and `extra` lines.
    pub fn mfad_config(&self, extra: &str) -> String {
        let filter = match self.shape {
            Shape::Posix => "(uid={user})",
            Shape::Ad => "(sAMAccountName={user})",
        };
        format!(
            "[directory]\nurl = \"ldaps://127.0.0.1:{}\"\nca_file = {:?}\nbind_dn = \"{BIND_DN}\"\n\
             password_file = {:?}\nbase = \"{BASE}\"\nuser_filter = \"{filter}\"\n{extra}\n",
            self.ldaps_port,
            self.ca_file().display().to_string(),
            self.password_file().display().to_string(),
        )
    }

    /// Stops slapd (SIGTERM, then waits), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
