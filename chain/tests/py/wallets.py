"""Creates and loads bittensor wallets with the PyPI bittensor-wallet package, for
chain/tests/wallet_compat.rs.

    python wallets.py create PATH PASSWORD   a wallet "pyw" (encrypted coldkey, hotkey "hk1"), JSON out
    python wallets.py load PATH NAME HOTKEY PASSWORD   loads a wallet written by us, JSON out
"""

import json
import sys

import bittensor_wallet as bw


def create(path, password):
    w = bw.Wallet(name="pyw", hotkey="hk1", path=path)
    w.create_new_coldkey(n_words=12, use_password=True, overwrite=True, suppress=True, coldkey_password=password)
    w.create_new_hotkey(n_words=12, use_password=False, overwrite=True, suppress=True)
    kf = w.coldkey_file
    print(json.dumps({
        "coldkey": w.coldkeypub.ss58_address,
        "hotkey": w.hotkey.ss58_address,
        "env_var": kf.env_var_name(),
        "env_value": kf.save_password_to_env(password),
    }))


def load(path, name, hotkey, password):
    w = bw.Wallet(name=name, hotkey=hotkey, path=path)
    cold = w.get_coldkey(password=password)
    hot = w.get_hotkey()
    msg = b"covenant"
    print(json.dumps({
        "coldkey": cold.ss58_address,
        "coldkeypub": w.get_coldkeypub().ss58_address,
        "hotkey": hot.ss58_address,
        "hotkeypub": w.get_hotkeypub().ss58_address,
        "hotkey_signature": "0x" + bytes(hot.sign(msg)).hex(),
        "coldkey_encrypted": w.coldkey_file.is_encrypted(),
    }))


if __name__ == "__main__":
    {"create": create, "load": load}[sys.argv[1]](*sys.argv[2:])
