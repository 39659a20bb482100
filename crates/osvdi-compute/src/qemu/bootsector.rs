//! Tiny x86 boot sectors made in code: real-mode programs that write text to COM1 and halt.
//! The KVM probe boots one, and tests use them as guests that boot in a fraction of a second.

/// One step of a boot-sector program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes to COM1 (port 0x3F8). No NUL bytes.
    Print(Vec<u8>),
    /// Enable interrupts and sleep until the BIOS timer (18.2 Hz) has ticked this many times:
    /// proves that timer interrupts reach the virtual CPU.
    WaitTicks(u8),
    /// ACPI soft power-off as QEMU's q35 machine implements it (PM1a control at 0x604 once
    /// SeaBIOS set the PM base): the guest powers itself off.
    PowerOff,
}

/// Why a program does not fit a boot sector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootSectorError {
    #[error("Boot sector program is {0} bytes, more than the 510 available")]
    TooLong(usize),
    #[error("Boot sector text cannot contain NUL bytes")]
    Nul,
}

const LOAD_ADDRESS: u16 = 0x7C00;
const BIOS_TICKS: u16 = 0x046C;

/// A 512-byte MBR boot sector running `steps`, then halting with interrupts off forever
/// (it ignores ACPI power buttons: a guest that has to be forced off).
pub fn boot_sector(steps: &[Step]) -> Result<[u8; 512], BootSectorError> {
    // Code first, strings after it: string addresses are patched once the code size is known.
    let mut code: Vec<u8> = vec![
        0xFA, // cli
        0xFC, // cld
        0x31, 0xC0, // xor ax, ax
        0x8E, 0xD8, // mov ds, ax
        0x8E, 0xD0, // mov ss, ax
        0xBC, 0x00, 0x7C, // mov sp, 0x7C00
        0xBA, 0xF8, 0x03, // mov dx, 0x3F8
    ];
    let mut string_fixups: Vec<(usize, usize)> = Vec::new(); // (offset of imm16, string index)
    let mut call_fixups: Vec<usize> = Vec::new(); // offsets of rel16 to `print`
    let mut strings: Vec<&[u8]> = Vec::new();
    for step in steps {
        match step {
            Step::Print(text) => {
                if text.contains(&0) {
                    return Err(BootSectorError::Nul);
                }
                code.push(0xBE); // mov si, imm16
                string_fixups.push((code.len(), strings.len()));
                code.extend([0, 0]);
                strings.push(text);
                code.push(0xE8); // call rel16
                call_fixups.push(code.len());
                code.extend([0, 0]);
            }
            Step::WaitTicks(ticks) => {
                let [lo, hi] = BIOS_TICKS.to_le_bytes();
                code.extend([0xFB]); // sti
                code.extend([0x8B, 0x1E, lo, hi]); // mov bx, [0x46C]
                code.extend([0x83, 0xC3, *ticks]); // add bx, ticks
                let wait = code.len();
                code.extend([0xF4]); // hlt (until the next interrupt)
                code.extend([0xA1, lo, hi]); // mov ax, [0x46C]
                code.extend([0x29, 0xD8]); // sub ax, bx
                let rel = wait as isize - (code.len() as isize + 2);
                code.extend([0x78, rel as i8 as u8]); // js wait
                code.extend([0xFA]); // cli
            }
            Step::PowerOff => {
                code.extend([0xBA, 0x04, 0x06]); // mov dx, 0x604
                code.extend([0xB8, 0x00, 0x20]); // mov ax, 0x2000 (SLP_EN, sleep type 0: S5)
                code.extend([0xEF]); // out dx, ax
                code.extend([0xBA, 0xF8, 0x03]); // mov dx, 0x3F8
            }
        }
    }
    let halt = code.len();
    code.extend([0xFA, 0xF4, 0xEB, 0xFC]); // halt: cli; hlt; jmp halt
    debug_assert_eq!(code.len() - halt, 4);
    let print = code.len();
    // print: lodsb; test al, al; jz done; out dx, al; jmp print; done: ret
    code.extend([0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xC3]);
    for at in call_fixups {
        let rel = (print as isize - (at as isize + 2)) as i16;
        code[at..at + 2].copy_from_slice(&rel.to_le_bytes());
    }
    let mut string_at = Vec::new();
    for text in &strings {
        string_at.push(code.len());
        code.extend_from_slice(text);
        code.push(0);
    }
    for (at, index) in string_fixups {
        let address = LOAD_ADDRESS + string_at[index] as u16;
        code[at..at + 2].copy_from_slice(&address.to_le_bytes());
    }
    if code.len() > 510 {
        return Err(BootSectorError::TooLong(code.len()));
    }
    let mut sector = [0u8; 512];
    sector[..code.len()].copy_from_slice(&code);
    sector[510] = 0x55;
    sector[511] = 0xAA;
    Ok(sector)
}

/// A guest that writes `line` and a newline to COM1, then halts.
pub fn print_and_halt(line: &str) -> Result<[u8; 512], BootSectorError> {
    boot_sector(&[Step::Print(format!("{line}\r\n").into_bytes())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_and_text() {
        let sector = print_and_halt("OSVDI-READY").unwrap();
        assert_eq!(&sector[510..], &[0x55, 0xAA]);
        let text = b"OSVDI-READY\r\n\0";
        let at = sector.windows(text.len()).position(|w| w == text).unwrap();
        // `mov si, imm16` right after the prologue points at the text.
        assert_eq!(sector[14], 0xBE);
        assert_eq!(
            u16::from_le_bytes([sector[15], sector[16]]),
            0x7C00 + at as u16
        );
    }

    #[test]
    fn calls_reach_print() {
        let sector = boot_sector(&[
            Step::Print(b"a".to_vec()),
            Step::WaitTicks(2),
            Step::Print(b"b".to_vec()),
        ])
        .unwrap();
        let print = sector
            .windows(9)
            .position(|w| w == [0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xC3])
            .unwrap();
        let calls: Vec<usize> = (0..400)
            .filter(|&i| sector[i] == 0xE8 && sector[i - 3] == 0xBE)
            .collect();
        assert_eq!(calls.len(), 2);
        for call in calls {
            let rel = i16::from_le_bytes([sector[call + 1], sector[call + 2]]);
            assert_eq!(call as isize + 3 + rel as isize, print as isize);
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(
            boot_sector(&[Step::Print(vec![b'x'; 600])]),
            Err(BootSectorError::TooLong(634))
        );
        assert_eq!(
            boot_sector(&[Step::Print(b"a\0b".to_vec())]),
            Err(BootSectorError::Nul)
        );
    }
}
