"""Drives the dev chain with a client that is not ours: PyPI's substrate-interface, calling the chain
the way the bittensor SDK and templar do (same pallets, calls, argument names and value shapes).

    python compat.py flow WS_URL         registration, commit-reveal, commitments, stake, axon, weights
    python compat.py throughput WS_URL   100 signed extrinsics in one block (chain started with a
                                         long block time; blocks are built here with dev_newBlock)

Prints one line per check and exits non-zero on the first failure.
"""

import sys
import time

from scalecodec.base import ScaleBytes
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.utils.hasher import blake2_256

TAO = 1_000_000_000


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def submit(substrate, call, keypair, **kw):
    xt = substrate.create_signed_extrinsic(call=call, keypair=keypair, **kw)
    receipt = substrate.submit_extrinsic(xt, wait_for_inclusion=True)
    if not receipt.is_success:
        raise AssertionError(f"{call.call_module['name']}.{call.call_function['name']} failed: {receipt.error_message}")
    return receipt


def call(substrate, module, function, params):
    return substrate.compose_call(call_module=module, call_function=function, call_params=params)


def sudo(substrate, alice, function, params):
    inner = call(substrate, "AdminUtils", function, params)
    return submit(substrate, call(substrate, "Sudo", "sudo", {"call": inner}), alice)


def storage(substrate, module, item, params):
    return substrate.query(module, item, params).value


def wait_for(pred, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def flow(url):
    substrate = SubstrateInterface(url=url, ss58_format=42)
    alice = Keypair.create_from_uri("//Alice")
    bob = Keypair.create_from_uri("//Bob")
    owner_hot = Keypair.create_from_uri("//AliceHotkey")
    bob_hot = Keypair.create_from_uri("//BobHotkey")

    # Local set-up as the SDK's e2e tests do it.
    sudo(substrate, alice, "sudo_set_admin_freeze_window", {"window": 0})
    sudo(substrate, alice, "sudo_set_network_rate_limit", {"rate_limit": 0})
    receipt = submit(substrate, call(substrate, "SubtensorModule", "register_network", {"hotkey": owner_hot.ss58_address}), alice)
    added = [e.value for e in receipt.triggered_events if e.value["event_id"] == "NetworkAdded"]
    check(len(added) == 1, "register_network emitted NetworkAdded")
    netuid = added[0]["attributes"][0]
    check(storage(substrate, "SubtensorModule", "SubnetOwner", [netuid]) == alice.ss58_address, f"SubnetOwner({netuid}) is Alice")
    check(storage(substrate, "SubtensorModule", "Keys", [netuid, 0]) == owner_hot.ss58_address, "the owner hotkey is uid 0")
    submit(substrate, call(substrate, "SubtensorModule", "start_call", {"netuid": netuid}), alice)
    check(storage(substrate, "SubtensorModule", "SubtokenEnabled", [netuid]) is True, "start_call enabled the subtoken")
    sudo(substrate, alice, "sudo_set_weights_set_rate_limit", {"netuid": netuid, "weights_set_rate_limit": 0})

    # Registration by a coldkey for a hotkey without funds.
    burn = storage(substrate, "SubtensorModule", "Burn", [netuid])
    before = storage(substrate, "System", "Account", [bob.ss58_address])["data"]["free"]
    submit(substrate, call(substrate, "SubtensorModule", "burned_register", {"netuid": netuid, "hotkey": bob_hot.ss58_address}), bob)
    after = storage(substrate, "System", "Account", [bob.ss58_address])["data"]["free"]
    check(storage(substrate, "SubtensorModule", "Uids", [netuid, bob_hot.ss58_address]) == 1, "burned_register gave uid 1")
    check(storage(substrate, "SubtensorModule", "SubnetworkN", [netuid]) == 2, "SubnetworkN is 2")
    check(storage(substrate, "SubtensorModule", "Owner", [bob_hot.ss58_address]) == bob.ss58_address, "Owner(hotkey) is Bob")
    check(before - after >= burn, f"the coldkey paid the burn ({burn} rao) plus fees")

    # A 128-byte commitment, exactly as the bittensor SDK's publish_metadata sends it (templar's
    # bucket credentials), signed by the zero-balance hotkey.
    creds = ("A" * 32 + "k" * 32 + "s" * 64).encode()
    info = {"fields": [[{f"Raw{len(creds)}": creds}]]}
    submit(substrate, call(substrate, "Commitments", "set_commitment", {"netuid": netuid, "info": info}), bob_hot)
    found = {}
    for key, reg in substrate.query_map("Commitments", "CommitmentOf", [netuid]):
        found[key.value] = reg.value
    check(bob_hot.ss58_address in found, "query_map CommitmentOf lists the hotkey")
    field = found[bob_hot.ss58_address]["info"]["fields"][0]
    raw = field["Raw128"]
    raw = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
    check(raw == creds, "CommitmentOf holds the 128 bytes (Raw128, no length prefix)")
    check(found[bob_hot.ss58_address]["deposit"] == 0, "Registration.deposit is 0")

    # Stake and serve.
    submit(substrate, call(substrate, "SubtensorModule", "add_stake", {"hotkey": bob_hot.ss58_address, "netuid": netuid, "amount_staked": 10 * TAO}), bob)
    check(storage(substrate, "SubtensorModule", "TotalHotkeyAlpha", [bob_hot.ss58_address, netuid]) == 10 * TAO, "TotalHotkeyAlpha is the 10 TAO staked (1:1)")
    ip = (10 << 24) | 5
    submit(substrate, call(substrate, "SubtensorModule", "serve_axon", {"netuid": netuid, "version": 10002000, "ip": ip, "port": 8091, "ip_type": 4, "protocol": 4, "placeholder1": 0, "placeholder2": 0}), bob_hot)
    axon = storage(substrate, "SubtensorModule", "Axons", [netuid, bob_hot.ss58_address])
    check(axon["ip"] == ip and axon["port"] == 8091, "Axons holds the served endpoint")

    # Commit-reveal v2 (on by default): commit the hash now, reveal in the next epoch.
    uids, values, salt, version_key = [0, 1], [65535, 100], [1, 2, 3, 4, 5, 6, 7, 8], 0
    payload = substrate.encode_scale("AccountId", owner_hot.ss58_address) + substrate.encode_scale("u16", netuid) \
        + substrate.encode_scale("Vec<u16>", uids) + substrate.encode_scale("Vec<u16>", values) \
        + substrate.encode_scale("Vec<u16>", salt) + substrate.encode_scale("u64", version_key)
    commit_hash = "0x" + blake2_256(payload.data).hex() if isinstance(payload, ScaleBytes) else None
    check(commit_hash is not None, "built the v2 commit hash")
    submit(substrate, call(substrate, "SubtensorModule", "commit_weights", {"netuid": netuid, "commit_hash": commit_hash}), owner_hot)
    # WeightCommits holds (hash, commit epoch, commit block, _): the reveal is due exactly in the
    # commit's epoch + RevealPeriodEpochs (reading the current epoch instead races the boundary).
    commits = storage(substrate, "SubtensorModule", "WeightCommits", [netuid, owner_hot.ss58_address])
    check(len(commits) == 1 and commits[0][0] == commit_hash, f"WeightCommits holds the commit: {commits}")
    reveal_epoch = commits[0][1] + storage(substrate, "SubtensorModule", "RevealPeriodEpochs", [netuid])
    wait_for(lambda: storage(substrate, "SubtensorModule", "SubnetEpochIndex", [netuid]) >= reveal_epoch, "the reveal epoch")
    submit(substrate, call(substrate, "SubtensorModule", "reveal_weights", {"netuid": netuid, "uids": uids, "values": values, "salt": salt, "version_key": version_key}), owner_hot)
    weights = storage(substrate, "SubtensorModule", "Weights", [netuid, 0])
    check([tuple(w) for w in weights] == [(0, 65535), (1, 100)], f"revealed weights read back: {weights}")

    # Plain set_weights once commit-reveal is off.
    sudo(substrate, alice, "sudo_set_commit_reveal_weights_enabled", {"netuid": netuid, "enabled": False})
    submit(substrate, call(substrate, "SubtensorModule", "set_weights", {"netuid": netuid, "dests": [1], "weights": [7], "version_key": 0}), owner_hot)
    weights = storage(substrate, "SubtensorModule", "Weights", [netuid, 0])
    check([tuple(w) for w in weights] == [(1, 65535)], f"set_weights read back (max-upscaled): {weights}")

    # An epoch turns the weights into incentive and emission. Consensus is a stake-weighted median:
    # the owner's weights count once its stake outweighs Bob's (who sets none).
    submit(substrate, call(substrate, "SubtensorModule", "add_stake", {"hotkey": owner_hot.ss58_address, "netuid": netuid, "amount_staked": 100 * TAO}), alice)
    epoch = storage(substrate, "SubtensorModule", "SubnetEpochIndex", [netuid])
    wait_for(lambda: storage(substrate, "SubtensorModule", "SubnetEpochIndex", [netuid]) > epoch, "another epoch")
    incentive = storage(substrate, "SubtensorModule", "Incentive", [netuid])
    emission = storage(substrate, "SubtensorModule", "Emission", [netuid])
    check(len(incentive) == 2 and incentive[1] > 60000, f"uid 1 earns the incentive: {incentive}")
    check(emission[1] > 0, f"uid 1 got emission: {emission}")
    result = substrate.rpc_request("state_call", ["SubnetInfoRuntimeApi_get_metagraph", "0x" + netuid.to_bytes(2, "little").hex()])["result"]
    check(result.startswith("0x01"), "SubnetInfoRuntimeApi.get_metagraph returns Some")


def throughput(url, count=100):
    substrate = SubstrateInterface(url=url, ss58_format=42)
    alice = Keypair.create_from_uri("//Alice")
    nonce = substrate.get_account_nonce(alice.ss58_address)
    dests = [Keypair.create_from_uri(f"//Throughput{i}") for i in range(count)]
    started = time.time()
    for i, dest in enumerate(dests):
        c = call(substrate, "Balances", "transfer_keep_alive", {"dest": dest.ss58_address, "value": TAO})
        xt = substrate.create_signed_extrinsic(call=c, keypair=alice, nonce=nonce + i)
        substrate.rpc_request("author_submitExtrinsic", [str(xt.data)])
    submitted = time.time() - started
    built = time.time()
    block_hash = substrate.rpc_request("dev_newBlock", [{}])["result"]
    build_s = time.time() - built
    block = substrate.get_block(block_hash=block_hash)
    signed = [x for x in block["extrinsics"] if x.value.get("address")]
    check(len(signed) == count, f"{len(signed)} signed extrinsics in block #{block['header']['number']}")
    events = substrate.get_events(block_hash=block_hash)
    failed = [e for e in events if e.value["event_id"] == "ExtrinsicFailed"]
    ok = [e for e in events if e.value["event_id"] == "ExtrinsicSuccess"]
    check(not failed and len(ok) == count + 1, f"all {count} succeeded (plus the timestamp inherent)")
    for dest in dests[:3] + dests[-3:]:
        check(substrate.query("System", "Account", [dest.ss58_address]).value["data"]["free"] == TAO, f"{dest.ss58_address} received 1 TAO")
    print(f"measured: submit {count} in {submitted:.2f} s, build the block in {build_s:.2f} s", flush=True)


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    {"flow": flow, "throughput": throughput}[mode](url)
    print(f"{mode}: all checks passed", flush=True)
