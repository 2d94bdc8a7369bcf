#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the test fixtures (tests/fixtures/wechatpy.json)."""
import json, os, sys, urllib.parse

here = os.path.dirname(os.path.abspath(__file__))
fixtures = json.load(open(os.path.join(here, "..", "tests", "fixtures", "wechatpy.json")))

def write(target, name, data):
    folder = os.path.join(here, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

for i, r in enumerate(fixtures["requests"]):
    name = f"{i:03}-{r['name']}-{r['mode']}"
    write("xml", name, r["plaintext"])
    write("decrypt", name, r["body"])
    query = urllib.parse.urlencode(r["query"])
    # An odd first byte asks the harness to sign; the fixtures' own signatures are kept as they are.
    write("webhook", name, query + "\n" + r["body"])
for i, r in enumerate(fixtures["replies"]):
    write("reply_judge", f"{i:03}-{r['type']}", r["encrypted"] or r["plaintext"])
    write("reply_judge", f"{i:03}-{r['type']}-plain", r["plaintext"])
write("id_token", "jwt", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhIn0.c2ln")
write("id_token", "pkce", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\nE9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
write("id_token", "uri", "https://shop.example.com/cb?x=1")
write("oauth_state", "state", "02" + "00" * 41 + "\n/me?tab=1")
menu = {"button": [{"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
                   {"name": "菜单", "sub_button": [{"type": "view", "name": "搜索", "url": "http://www.soso.com/"},
                                                   {"type": "miniprogram", "name": "wxa", "url": "http://mp.weixin.qq.com",
                                                    "appid": "wx286b93c14bbf93aa", "pagepath": "pages/lunar/index"}]}]}
write("menu", "create", json.dumps(menu, ensure_ascii=False))
current = {"is_menu_open": 1, "selfmenu_info": {"button": [{"type": "click", "name": "今日歌曲", "key": "V1001"},
           {"name": "菜单", "sub_button": {"list": [{"type": "view", "name": "搜索", "url": "http://www.soso.com/"}]}}]}}
write("menu", "current", json.dumps(current, ensure_ascii=False))
print("seeds written to", os.path.join(here, "corpus"))
