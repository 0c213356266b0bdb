//! Countries of IP addresses, from a MaxMind-format database (GeoLite2 or
//! GeoIP2 Country/City, or any MMDB with `country.iso_code`), when the
//! admin configures `geoip_database`. Read once at start-up.

use maxminddb::{Reader, geoip2};
use std::net::IpAddr;
use std::path::Path;

pub struct Geo {
    reader: Reader<Vec<u8>>,
}

impl Geo {
    pub fn open(path: &Path) -> Result<Self, String> {
        Reader::open_readfile(path)
            .map(|reader| Self { reader })
            .map_err(|e| format!("cannot read the country database {}: {e}", path.display()))
    }

    /// The ISO 3166 code of the country of `ip` ("DE"), if the database
    /// knows it. Private and unknown addresses have none.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = self.reader.lookup(ip).ok()?;
        let country: geoip2::Country<'_> = found.decode().ok()??;
        country.country.iso_code.map(str::to_owned)
    }
}
