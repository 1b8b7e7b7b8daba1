"""Independent implementation of the sample-pool specification in model/src/data/pool.rs:
ChaCha20 (RFC 7539 block function, 64-bit counter, zero nonce), blake2b-256 seed, Lemire bounded
draws, partial Fisher-Yates. Used by model/tests/pool_reference.rs to check the Rust implementation
against a second one. Usage: python3 pool.py NETUID UID WINDOW DATASET_LEN POOL_SIZE"""
import hashlib, struct
def rotl(v, c): return ((v << c) & 0xffffffff) | (v >> (32 - c))
def qr(s, a, b, c, d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],7)
def block(key, counter):
    const=[0x61707865,0x3320646e,0x79622d32,0x6b206574]
    k=list(struct.unpack('<8I',key))
    st=const+k+[counter&0xffffffff,counter>>32,0,0]
    w=st[:]
    for _ in range(10):
        qr(w,0,4,8,12);qr(w,1,5,9,13);qr(w,2,6,10,14);qr(w,3,7,11,15)
        qr(w,0,5,10,15);qr(w,1,6,11,12);qr(w,2,7,8,13);qr(w,3,4,9,14)
    return [(w[i]+st[i])&0xffffffff for i in range(16)]
class Rng:
    def __init__(s,key): s.key=key; s.ctr=0; s.buf=[]
    def u32(s):
        if not s.buf: s.buf=block(s.key,s.ctr); s.ctr+=1
        return s.buf.pop(0)
    def u64(s):
        lo=s.u32(); hi=s.u32(); return lo|(hi<<32)
def bounded(r,s):
    t=((1<<64)-s)%s
    while True:
        m=r.u64()*s
        if (m&((1<<64)-1))>=t: return m>>64
def pool(netuid,uid,w,n,k):
    seed=hashlib.blake2b(struct.pack('<HHQ',netuid,uid,w)+b'pool',digest_size=32).digest()
    r=Rng(seed); moved={}; out=[]
    for i in range(min(k,n)):
        j=i+bounded(r,n-i); aj=moved.get(j,j); ai=moved.get(i,i); moved[j]=ai; out.append(aj)
    return out
if __name__ == "__main__":
    import json, sys
    netuid, uid, window, n, k = (int(a) for a in sys.argv[1:6])
    print(json.dumps(pool(netuid, uid, window, n, k)))
