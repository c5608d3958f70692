//! Which partition a contact belongs to: a hash of its id that never
//! changes, so that every node routes every id alike without asking.

/// Partitions per workspace: the unit of ownership, failover and
/// checkpoint, and so the most nodes a workspace's contacts spread over.
pub const PARTITIONS: u16 = 32;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The partition of contact `id`: FNV-1a (64 bits) of its UTF-8 bytes,
/// modulo `partitions`. FNV-1a is fixed by its definition (no seed, no
/// version), so a partition computed today is the same in every release.
pub fn partition_of(id: &str, partitions: u16) -> u16 {
    let hash = id.bytes().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    (hash % u64::from(partitions.max(1))) as u16
}

/// The lease key of partition `partition`: `p<two digits>`. Ownership is
/// per partition number across workspaces (the node holding `p07` owns
/// partition 7 of every workspace), so a cluster renews 32 leases however
/// many workspaces it holds.
pub fn partition_lease(partition: u16) -> String {
    format!("p{partition:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv_1a_64() {
        // The published FNV-1a 64 test vectors: routing must never change.
        let fnv = |s: &str| {
            s.bytes().fold(FNV_OFFSET, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
            })
        };
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            partition_of("foobar", PARTITIONS),
            (0x8594_4171_f739_67e8u64 % 32) as u16
        );
    }

    #[test]
    fn ids_spread_over_every_partition() {
        let mut counts = [0u32; PARTITIONS as usize];
        for i in 0..32_000 {
            counts[partition_of(&format!("contact-{i}"), PARTITIONS) as usize] += 1;
        }
        // 1,000 expected in each; a fair hash stays well within ±20%.
        for (p, n) in counts.iter().enumerate() {
            assert!((800..1200).contains(n), "partition {p} holds {n}");
        }
    }
}
