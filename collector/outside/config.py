"""The ``outside:`` section of the collector config: what the prober may send, where, how often.

Off by default: the operator switches it on and answers for the packets. Every default carries
its source (detection.md §1-2: IODA's thresholds, trinarkular's constants). Paths are relative
to the config file and checked at load, with the blocks parsed, so a bad file fails at start.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.outside.blocks import Block, BlockFileError, parse_blocks, parse_opt_out
from collector.outside.prober import ProberSettings
from collector.outside.wire import Method
from probe.core.typed_config import ConfigError, checked, duration_field, positive


def _methods(value: tuple[str, ...]) -> str | None:
    known = {m.value for m in Method}
    if not value:
        return "list at least one of icmp, tcp"
    for item in value:
        if item not in known:
            return f"unknown probe method {item!r} (icmp, tcp)"
    return None


def _ports(value: tuple[int, ...]) -> str | None:
    for port in value:
        if not 0 < port < 65536:
            return f"not a TCP port: {port}"
    return None


def _share(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


@dataclass(frozen=True, slots=True)
class OutsideConfig:
    enabled: bool = False
    # Block files (COUNTRY NETWORK PREFIX per line), relative to the config file.
    block_files: tuple[str, ...] = ()
    # Prefixes never probed (operators' and owners' opt-out requests), relative to the config.
    opt_out_file: str | None = None
    # Upper bound on /24 blocks over all files; a file over it is refused, not cut.
    max_blocks: int = checked(65536, positive)
    # Packets per second in total, and the burst the bucket may save up. Gentle by default.
    rate: float = checked(5.0, positive)
    burst: float = checked(5.0, lambda v: None if v >= 1 else "must be >= 1")
    # IODA probes every block at least every 10 minutes (detection.md §1.1): that is a most.
    # The watch sets leave the packets for rounds twice as often.
    round: float = duration_field(300.0, positive)
    # trinarkular's probe timeout (detection.md §2).
    timeout: float = duration_field(3.0, positive)
    methods: tuple[str, ...] = checked(("icmp", "tcp"), _methods)
    tcp_ports: tuple[int, ...] = checked((80, 443), _ports)
    discovery_sample: int = checked(16, positive)
    max_responsive: int = checked(8, positive)
    # Rounds between discovery passes of a block whose responsive set is not full: an hour.
    rediscover_every: int = checked(12, positive)
    # Share of a round's packet budget (rate x round) that discovery may take; the rest is
    # left for the rounds of blocks already found.
    discovery_share: float = checked(0.5, _share)
    max_in_flight: int = checked(64, positive)
    # Blocks watched per network (country, network): a fixed random sample of the blocks that
    # answer, probed every round; the network's other blocks get no packet. 0: every block.
    watch_per_network: int = checked(
        64, lambda v: None if v >= 0 else "must be >= 0 (0 watches every block)")
    # A network that turns critical is looked at again this long after the round, on at most
    # ``confirm_sample`` of its dark blocks, so its event needs no second full round.
    confirm_after: float = duration_field(30.0, lambda v: None if v >= 0 else "must be >= 0")
    confirm_sample: int = checked(32, positive)
    # The verdict's median window (IODA active probing, detection.md §1.2-1.3: 7 days). Its
    # thresholds are the detection engine's (``detection.outside``): one set for both.
    history: float = duration_field(7 * 86400.0, positive)

    def __post_init__(self) -> None:
        if self.enabled and not self.block_files:
            raise ValueError("enabled needs at least one file in block_files")

    def prober_settings(self) -> ProberSettings:
        return ProberSettings(
            round_seconds=self.round, timeout=self.timeout,
            methods=tuple(Method(m) for m in self.methods), tcp_ports=self.tcp_ports,
            discovery_sample=self.discovery_sample, max_responsive=self.max_responsive,
            rediscover_every=self.rediscover_every,
            max_discovery_blocks=self.discovery_blocks_per_round,
            round_packets=max(1, int(self.rate * self.round)),
            discovery_share=self.discovery_share, watch_per_network=self.watch_per_network,
            confirm_after=self.confirm_after, confirm_sample=self.confirm_sample)

    @property
    def discovery_blocks_per_round(self) -> int:
        """Blocks whose discovery fits in ``discovery_share`` of a round's packets, each
        pass costing at most one ICMP and one SYN per port for every sampled address: the
        least the prober gives discovery per round (it adds what the watched blocks' rounds
        leave of the rest, ``ProberSettings.round_packets``)."""
        per_address = (1 if "icmp" in self.methods else 0) + \
            (len(self.tcp_ports) if "tcp" in self.methods else 0)
        per_block = self.discovery_sample * max(1, per_address)
        return max(1, int(self.rate * self.round * self.discovery_share / per_block))

    @property
    def history_points(self) -> int:
        return max(1, round(self.history / self.round))


def resolve(config: OutsideConfig, base: Path) -> OutsideConfig:
    """Paths made absolute against the config file's directory, and every file parsed now,
    so that a bad line fails at start with its file and line."""
    files = tuple(str((base / name).resolve()) for name in config.block_files)
    opt_out = None if config.opt_out_file is None else str((base / config.opt_out_file).resolve())
    resolved = replace(config, block_files=files, opt_out_file=opt_out)
    load_blocks(resolved)
    return resolved


def load_blocks(config: OutsideConfig) -> tuple[list[Block], list[ipaddress.IPv4Network]]:
    """The blocks of every block file minus the opt-out list; ConfigError names the file."""
    opt_out: list[ipaddress.IPv4Network] = []
    try:
        if config.opt_out_file is not None:
            path = Path(config.opt_out_file)
            opt_out = parse_opt_out(path.read_text().splitlines(), name=path.name)
        seen: dict[ipaddress.IPv4Network, Block] = {}
        for name in config.block_files:
            path = Path(name)
            for block in parse_blocks(path.read_text().splitlines(), opt_out=opt_out,
                                      max_blocks=config.max_blocks, name=path.name):
                earlier = seen.setdefault(block.prefix, block)
                if earlier != block:
                    raise BlockFileError(f"{path.name}: {block.prefix} already listed for "
                                         f"{earlier.country} {earlier.network}")
        if len(seen) > config.max_blocks:
            raise BlockFileError(f"more than {config.max_blocks} /24 blocks in total")
        blocks = sorted(seen.values())
    except OSError as exc:
        raise ConfigError("outside", f"cannot read {exc.filename}: {exc.strerror}") from exc
    except BlockFileError as exc:
        raise ConfigError("outside.block_files", str(exc)) from exc
    return blocks, opt_out
