//! The classifier's per-decision counters (`enum xvs_counter`), summed over
//! CPUs.
//!
//! The program counts into a `PERCPU_ARRAY` with one slot per decision, so
//! the packet path never contends on a cache line; [`Counters`] is a
//! snapshot summed over every possible CPU. A frame moves one counter when
//! it is passed or dropped, and two or three when it is switched (what was
//! done to it, then whether a socket took it): see `docs/classifier.md`.

use std::fmt;

use crate::skel::types::xvs_counter as XvsCounter;

macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident = $c_name:ident, $name:literal; )*) => {
        /// One slot of the counter array; the discriminant is its index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Counter {
            $( $(#[$doc])* $variant = XvsCounter::$c_name.0, )*
        }

        impl Counter {
            /// Every counter, in index order.
            pub const ALL: [Counter; Counter::COUNT] = [$(Counter::$variant),*];

            /// Stable snake_case name (used in docs, stats and Prometheus).
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }
        }
    };
}

counters! {
    /// Interface not in the port map (or role none): `XDP_PASS`.
    PassNoPort = XVS_CNT_PASS_NO_PORT, "pass_no_port";
    /// Uplink: not IPv4/IPv6 UDP to the VXLAN port (or > 2 VLAN tags): `XDP_PASS`.
    PassNotVxlan = XVS_CNT_PASS_NOT_VXLAN, "pass_not_vxlan";
    /// Uplink: UDP to the VXLAN port but not to a local VTEP address: `XDP_PASS`.
    PassNotLocal = XVS_CNT_PASS_NOT_LOCAL, "pass_not_local";
    /// Uplink: IPv4 UDP fragment (MF set or offset ≠ 0): `XDP_PASS`.
    PassFragment = XVS_CNT_PASS_FRAGMENT, "pass_fragment";
    /// Uplink: IPv6 with an extension header before any UDP: `XDP_PASS`.
    PassIpv6Ext = XVS_CNT_PASS_IPV6_EXT, "pass_ipv6_ext";
    /// Uplink: VXLAN over IPv4 decapsulated.
    DecapV4 = XVS_CNT_DECAP_V4, "decap_v4";
    /// Uplink: VXLAN over IPv6 decapsulated.
    DecapV6 = XVS_CNT_DECAP_V6, "decap_v6";
    /// Access: the outer VLAN tag was popped.
    VlanPopped = XVS_CNT_VLAN_POPPED, "vlan_popped";
    /// Access: the frame matched an attachment and goes to the switch.
    SwitchedAccess = XVS_CNT_SWITCHED_ACCESS, "switched_access";
    /// An AF_XDP socket was registered for the queue: `XDP_REDIRECT`.
    Redirected = XVS_CNT_REDIRECTED, "redirected";
    /// No AF_XDP socket for the queue: `XDP_DROP`.
    RedirectFailed = XVS_CNT_REDIRECT_FAILED, "redirect_failed";
    /// Frame shorter than an Ethernet header.
    DropRunt = XVS_CNT_DROP_RUNT, "drop_runt";
    /// Frame ends inside a VLAN tag.
    DropTruncVlan = XVS_CNT_DROP_TRUNC_VLAN, "drop_trunc_vlan";
    /// Frame ends inside the IPv4 header or its options.
    DropTruncIpv4 = XVS_CNT_DROP_TRUNC_IPV4, "drop_trunc_ipv4";
    /// Frame ends inside the IPv6 header.
    DropTruncIpv6 = XVS_CNT_DROP_TRUNC_IPV6, "drop_trunc_ipv6";
    /// IP version field disagrees with the EtherType.
    DropBadIpVersion = XVS_CNT_DROP_BAD_IP_VERSION, "drop_bad_ip_version";
    /// IPv4 IHL < 5.
    DropBadIhl = XVS_CNT_DROP_BAD_IHL, "drop_bad_ihl";
    /// IPv4 total length < header or > frame; IPv6 payload length > frame.
    DropBadIpLen = XVS_CNT_DROP_BAD_IP_LEN, "drop_bad_ip_len";
    /// IP payload shorter than a UDP header.
    DropTruncUdp = XVS_CNT_DROP_TRUNC_UDP, "drop_trunc_udp";
    /// UDP length < 8 or larger than the IP payload.
    DropBadUdpLen = XVS_CNT_DROP_BAD_UDP_LEN, "drop_bad_udp_len";
    /// UDP payload shorter than the VXLAN header.
    DropTruncVxlan = XVS_CNT_DROP_TRUNC_VXLAN, "drop_trunc_vxlan";
    /// VXLAN payload shorter than an Ethernet header.
    DropTruncInner = XVS_CNT_DROP_TRUNC_INNER, "drop_trunc_inner";
    /// VXLAN I flag clear.
    DropVxlanNoIFlag = XVS_CNT_DROP_VXLAN_NO_I_FLAG, "drop_vxlan_no_i_flag";
    /// VNI not configured.
    DropUnknownVni = XVS_CNT_DROP_UNKNOWN_VNI, "drop_unknown_vni";
    /// Access: (port, VID) not configured.
    DropUnknownAttachment = XVS_CNT_DROP_UNKNOWN_ATTACHMENT, "drop_unknown_attachment";
    /// A `bpf_xdp_adjust_*` helper refused (no headroom): should never move.
    DropAdjustFailed = XVS_CNT_DROP_ADJUST_FAILED, "drop_adjust_failed";
}

impl Counter {
    /// Number of counters (`XVS_CNT_MAX`).
    pub const COUNT: usize = XvsCounter::XVS_CNT_MAX.0 as usize;

    /// The counter at `index`, if any.
    pub fn from_index(index: usize) -> Option<Counter> {
        Counter::ALL.get(index).copied()
    }

    /// Whether this counter records a dropped frame.
    pub fn is_drop(self) -> bool {
        self.name().starts_with("drop_") || self == Counter::RedirectFailed
    }
}

// Every C counter has exactly one Rust variant, in the same order.
const _: () = {
    let mut i = 0;
    while i < Counter::COUNT {
        assert!(Counter::ALL[i] as usize == i);
        i += 1;
    }
};

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of every counter, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    values: [u64; Counter::COUNT],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            values: [0; Counter::COUNT],
        }
    }
}

impl Counters {
    /// Builds a snapshot from values in index order.
    pub fn from_values(values: [u64; Counter::COUNT]) -> Self {
        Counters { values }
    }

    /// The value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }

    /// Every counter with its value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .iter()
            .map(|&counter| (counter, self.get(counter)))
    }

    /// What moved since `earlier` (per counter, saturating at zero).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut values = [0; Counter::COUNT];
        for (i, v) in values.iter_mut().enumerate() {
            *v = self.values[i].saturating_sub(earlier.values[i]);
        }
        Counters { values }
    }

    /// The counters that are not zero.
    pub fn nonzero(&self) -> Vec<(Counter, u64)> {
        self.iter().filter(|&(_, v)| v != 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_unique_and_snake_case() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit())));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT);
    }

    #[test]
    fn since_subtracts_per_counter() {
        let mut a = [0; Counter::COUNT];
        a[Counter::DecapV4 as usize] = 5;
        let mut b = a;
        b[Counter::DecapV4 as usize] = 8;
        b[Counter::DropRunt as usize] = 1;
        let d = Counters::from_values(b).since(&Counters::from_values(a));
        assert_eq!(
            d.nonzero(),
            vec![(Counter::DecapV4, 3), (Counter::DropRunt, 1)]
        );
    }
}
