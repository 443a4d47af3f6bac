/**
 * Generated garbage for the registry: bad keys (stamps, node names, path tricks, shell
 * metacharacters, non-ASCII) and bad bodies (not IPs, 0.0.0.0, binary, 1 MiB), next to a
 * few valid members. Deterministic: the same list every run, except that well-formed keys carry
 * the current stamp (a key stamped long ago is expired, whatever its store time).
 */
import { formatStamp } from "../../src/registry/layout.ts";

export interface Planted {
  key: string;
  body: Uint8Array;
}

export interface Garbage {
  /** Valid heartbeats: node → address expected in the live members of each dir. */
  valid: { dir: "servers" | "agents"; node: string; body: string; address: string }[];
  /** Objects that must be skipped, each with one warning naming its key. */
  bad: Planted[];
}

const enc = (s: string) => new TextEncoder().encode(s);
const MIB = 1024 * 1024;

/** A current stamp: heartbeats are live only when their key's stamp is recent too. */
/** A valid stamp of now (a module-level one went stale in a long suite under load). */
export const goodStamp = (): string => formatStamp(new Date());
const BAD_STAMPS = [
  "20141316092731", // month 13
  "20140016092731", // month 0
  "20140532092731", // day 32
  "20140230092731", // 30 February
  "20140516242731", // hour 24
  "20140516096031", // minute 60
  "20140516092760", // second 60
  "2014051609273", // 13 digits
  "201405160927311", // 15 digits
  "2014O516092731", // letter O
  "２０１４０５１６０９２７３１", // full-width digits
  "-20140516092731",
  "20140516 92731",
  "",
  "x",
];
const OK_NODES = ["n1", "web-1-a", "db.example", "A_b"];
const BAD_NODES = [
  "", // "<stamp>-" with nothing after
  "-leading-dash",
  ".hidden",
  "_under",
  "$(reboot)",
  "`id`",
  "a;rm -rf /",
  "a|b",
  "a&&b",
  "a>b",
  "a<b",
  "a b",
  "a\tb",
  "a'b",
  'a"b',
  "a*b",
  "a?b",
  "a~b",
  "a!b",
  "a#b",
  "a%b",
  "a+b",
  "a=b",
  "a,b",
  "a:b",
  "a@b",
  "a{b}",
  "a[b]",
  "a\\b",
  "ümlaut",
  "节点",
  "emoji😀",
  "rtl\u202egnp",
  "zero\u200bwidth",
  "ctl\u0001x",
  "del\u007fx",
  "a/b", // a nested "folder"
  "n".repeat(129), // too long
];
/** Bodies that are not a usable join address. */
const BAD_BODIES: Uint8Array[] = [
  enc(""),
  enc("0.0.0.0"),
  enc("::"),
  enc("255.255.255.255"),
  enc("256.1.1.1"),
  enc("01.2.3.4"),
  enc("1.2.3"),
  enc("1.2.3.4.5"),
  enc("1.2.3.4; rm -rf /"),
  enc("$(curl evil)"),
  enc("`reboot`"),
  enc("1.2.3.4\n5.6.7.8"),
  enc("10.0.0.1 10.0.0.2"),
  enc("localhost"),
  enc("example.com"),
  enc("ff02::1"),
  enc("fe80::1%eth0"),
  enc("2001:db8::g"),
  enc("[2001:db8::1]"),
  enc("١٢٧.٠.٠.١"),
  enc("1.2.3.4:8301"),
  new Uint8Array([0xff, 0xfe, 0x31, 0x00]),
  new Uint8Array([0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2e, 0x34, 0x00]),
  enc(" ".repeat(300) + "10.0.0.1"), // a valid IP, but too big a body
  new Uint8Array(MIB).fill(0x31),
  enc("10.0.0.1" + "\n".repeat(MIB)),
];

export function generateGarbage(good = goodStamp()): Garbage {
  const valid: Garbage["valid"] = [
    { dir: "servers", node: "good-1", body: "10.1.0.1", address: "10.1.0.1" },
    { dir: "servers", node: "good-v6", body: "2001:DB8::10\n", address: "2001:db8::10" },
    { dir: "agents", node: "good-2", body: " 10.1.0.2\n", address: "10.1.0.2" },
    { dir: "agents", node: "web-1-a", body: "fd00::2", address: "fd00::2" },
  ];
  const bad: Planted[] = [];
  const body = enc("10.9.9.9");
  for (const dir of ["servers", "agents"]) {
    for (const stamp of BAD_STAMPS) {
      for (const node of OK_NODES) bad.push({ key: `${dir}/${stamp}-${node}`, body });
    }
    for (const node of BAD_NODES) bad.push({ key: `${dir}/${good}-${node}`, body });
    bad.push(
      { key: `${dir}/${good}node`, body }, // missing dash
      { key: `${dir}/${good}_node`, body },
      { key: `${dir}/../x`, body },
      { key: `${dir}/../../etc/passwd`, body },
      { key: `${dir}/./${good}-dot`, body },
      { key: `${dir}//${good}-dbl`, body },
      { key: `${dir}/sub/${good}-nested`, body },
      { key: `${dir}/${good}-big-key`, body: new Uint8Array(MIB).fill(0x41) },
    );
    BAD_BODIES.forEach((b, i) => bad.push({ key: `${dir}/${good}-bad-body-${i}`, body: b }));
  }
  return { valid, bad };
}
