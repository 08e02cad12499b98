//! Test fixture for `itkd_sys::seccomp` (run as root); prints `Key:\tvalue` lines:
//!
//! - `[--no-filter] UMIN UMAX GMIN GMAX`: installs confine_id_changes((UMIN, UMAX),
//!   (GMIN, GMAX)) (unless `--no-filter`, the control run), tries a list of id changes with
//!   raw system calls and prints each result (`ok` or the errno), ends as 20001/21001, then
//!   executes itself with `status` to show what a child inherits.
//! - `status`: prints this process's ids and seccomp state.
//! - `i386-setuid0 [--no-filter]` (x86_64): installs the filter for 1000..60000, then calls
//!   setuid32(0) through the i386 ABI (`int 0x80`); prints its result if still alive.

#[path = "common/mod.rs"]
mod common;

use common::{fail, number, print_status};
use itkd_sys::seccomp::confine_id_changes;
use nix::errno::Errno;

const STATUS: [&str; 5] = ["Uid:", "Gid:", "Groups:", "NoNewPrivs:", "Seccomp:"];
const M1: libc::c_long = u32::MAX as libc::c_long;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["status"] => print_status("", &STATUS),
        ["i386-setuid0", rest @ ..] => i386_setuid0(rest != ["--no-filter"]),
        ["--no-filter", ranges @ ..] => attempts(false, ranges),
        ranges => attempts(true, ranges),
    }
}

fn confine(ranges: (u32, u32, u32, u32)) {
    let (umin, umax, gmin, gmax) = ranges;
    confine_id_changes((umin, umax), (gmin, gmax)).unwrap_or_else(|e| fail(&e.to_string()));
}

/// A raw system call with up to three arguments, as `ok` or the errno's name.
fn call(nr: libc::c_long, a: libc::c_long, b: libc::c_long, c: libc::c_long) -> String {
    // SAFETY: only id-changing calls with integer arguments, and setgroups with a pointer
    // to a live array of at least `a` gid_t (see the callers).
    let rc = unsafe { libc::syscall(nr, a, b, c) };
    if rc == -1 {
        format!("{:?}", Errno::last())
    } else {
        "ok".to_owned()
    }
}

fn attempts(filter: bool, ranges: &[&str]) {
    let [umin, umax, gmin, gmax] = ranges else {
        fail("usage: itkd-seccomp-probe [--no-filter] UMIN UMAX GMIN GMAX")
    };
    if filter {
        confine((number(umin), number(umax), number(gmin), number(gmax)));
    }
    print_status("", &["NoNewPrivs:", "Seccomp:"]);
    use libc::*;
    let groups: [gid_t; 1] = [21001];
    let groups_ptr = groups.as_ptr() as c_long;
    // Order matters: the calls that would succeed without the filter must change nothing
    // the later lines rely on; the switch to 20001 comes last.
    let tries: Vec<(&str, c_long, [c_long; 3])> = vec![
        ("setresuid(0,0,0)", SYS_setresuid, [0, 0, 0]),
        ("setresuid(-1,-1,-1)", SYS_setresuid, [M1, M1, M1]),
        ("setresuid(-1,70000,-1)", SYS_setresuid, [M1, 70000, M1]),
        ("setreuid(-1,0)", SYS_setreuid, [M1, 0, 0]),
        ("setuid(0)", SYS_setuid, [0, 0, 0]),
        ("setfsuid(0)", SYS_setfsuid, [0, 0, 0]),
        ("setfsuid(-1)", SYS_setfsuid, [M1, 0, 0]),
        ("setgid(0)", SYS_setgid, [0, 0, 0]),
        (
            "setresgid(70000,70000,70000)",
            SYS_setresgid,
            [70000, 70000, 70000],
        ),
        ("setresgid(-1,999,-1)", SYS_setresgid, [M1, 999, M1]),
        ("setregid(0,-1)", SYS_setregid, [0, M1, 0]),
        ("setfsgid(0)", SYS_setfsgid, [0, 0, 0]),
        ("setgroups(0)", SYS_setgroups, [0, 0, 0]),
        ("setgroups([21001])", SYS_setgroups, [1, groups_ptr, 0]),
        #[cfg(target_arch = "x86_64")]
        (
            "x32 setresuid(0,0,0)",
            0x4000_0000 | SYS_setresuid,
            [0, 0, 0],
        ),
        (
            "setresgid(21001,21001,21001)",
            SYS_setresgid,
            [21001, 21001, 21001],
        ),
        (
            "setresuid(20001,20001,20001)",
            SYS_setresuid,
            [20001, 20001, 20001],
        ),
    ];
    for (name, nr, [a, b, c]) in tries {
        println!("{name}:\t{}", call(nr, a, b, c));
    }
    // What an exec'd child (a CGI) inherits.
    let me = std::env::current_exe().unwrap_or_else(|e| fail(&e.to_string()));
    let out = std::process::Command::new(me)
        .arg("status")
        .output()
        .unwrap_or_else(|e| fail(&e.to_string()));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("Child{line}");
    }
}

#[cfg(target_arch = "x86_64")]
fn i386_setuid0(filter: bool) {
    if filter {
        confine((1000, 60000, 1000, 60000));
    }
    let ret: u32;
    // SAFETY: `int 0x80` enters the kernel's i386 ABI: eax = 213 (setuid32), ebx = 0. ebx
    // is reserved by LLVM, so it is swapped in and out around the call; the kernel returns
    // in eax and may clobber r8-r11 on older kernels. No memory is touched.
    unsafe {
        std::arch::asm!(
            "xchg {arg:e}, ebx",
            "int 0x80",
            "xchg {arg:e}, ebx",
            arg = inout(reg) 0u32 => _,
            inlateout("eax") 213u32 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    // -ENOSYS means no ia32 emulation in this kernel.
    println!("Ret:\t{}", ret as i32);
}

#[cfg(not(target_arch = "x86_64"))]
fn i386_setuid0(_filter: bool) {
    println!("Ret:\tunsupported");
}
