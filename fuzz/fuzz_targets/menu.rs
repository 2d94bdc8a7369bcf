//! The custom menu's JSON and WeChat's rules for it: any JSON gives a menu and its problems, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxportal::upstream::menu::{CurrentMenu, Menu};

fuzz_target!(|data: &[u8]| {
    if let Ok(menu) = serde_json::from_slice::<Menu>(data) {
        let problems = menu.problems();
        let _ = menu.click_keys();
        if problems.is_empty() {
            // A menu that passes is one WeChat's shape can carry back.
            let json = serde_json::to_string(&menu).expect("a menu serializes");
            let back: Menu = serde_json::from_str(&json).expect("and parses again");
            assert_eq!(back, menu);
        }
    }
    if let Ok(current) = serde_json::from_slice::<CurrentMenu>(data) {
        let _ = current.to_menu().problems();
    }
});
