//! Check-digit and structure validators for identifier formats that have
//! them: Luhn, SSN, VIN, NPI, DEA, Medicare MBI, calendar dates.
//!
//! Owns: pure functions over ASCII; each says exactly what it accepts.

/// The Luhn (mod 10) check over the decimal digits of `digits`; any other
/// byte fails.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// An SSN as the SSA issues them: area not 000, 666 or 900–999; group not
/// 00; serial not 0000. `digits` is the nine digits without separators.
pub fn ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[0..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &digits[3..5] != b"00" && &digits[5..9] != b"0000"
}

/// A 17-character VIN (ISO 3779, no I, O or Q) whose 9th character is the
/// North American check digit (49 CFR 565.15).
pub fn vin(text: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    if text.len() != 17 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in text.iter().enumerate() {
        let value = match b.to_ascii_uppercase() {
            d @ b'0'..=b'9' => u32::from(d - b'0'),
            b'A' | b'J' => 1,
            b'B' | b'K' | b'S' => 2,
            b'C' | b'L' | b'T' => 3,
            b'D' | b'M' | b'U' => 4,
            b'E' | b'N' | b'V' => 5,
            b'F' | b'W' => 6,
            b'G' | b'P' | b'X' => 7,
            b'H' | b'Y' => 8,
            b'R' | b'Z' => 9,
            _ => return false,
        };
        sum += value * WEIGHTS[i];
    }
    let check = match sum % 11 {
        10 => b'X',
        n => b'0' + n as u8,
    };
    text[8].to_ascii_uppercase() == check
}

/// A 10-digit NPI: Luhn over the digits prefixed with the card issuer
/// prefix 80840 (45 CFR 162.406).
pub fn npi(digits: &[u8]) -> bool {
    if digits.len() != 10 || !matches!(digits[0], b'1' | b'2') {
        return false;
    }
    let mut prefixed = [0u8; 15];
    prefixed[..5].copy_from_slice(b"80840");
    prefixed[5..].copy_from_slice(digits);
    luhn(&prefixed)
}

/// A DEA registration number: two letters then seven digits, where
/// (d1 + d3 + d5) + 2 × (d2 + d4 + d6) ends in d7.
pub fn dea(text: &[u8]) -> bool {
    if text.len() != 9 || !text[..2].iter().all(u8::is_ascii_alphabetic) || !text[2..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = text[2..].iter().map(|b| u32::from(b - b'0')).collect();
    let sum = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5]);
    sum % 10 == d[6]
}

/// A Medicare Beneficiary Identifier (CMS MBI format): 11 characters,
/// `C A AN N A AN N A A N N` where C is 1–9, A a letter other than
/// S, L, O, I, B, Z, and N a digit. Dashes are not part of `text`.
pub fn mbi(text: &[u8]) -> bool {
    fn letter(b: u8) -> bool {
        b.is_ascii_alphabetic() && !matches!(b.to_ascii_uppercase(), b'S' | b'L' | b'O' | b'I' | b'B' | b'Z')
    }
    if text.len() != 11 {
        return false;
    }
    let t = text;
    matches!(t[0], b'1'..=b'9')
        && letter(t[1])
        && (letter(t[2]) || t[2].is_ascii_digit())
        && t[3].is_ascii_digit()
        && letter(t[4])
        && (letter(t[5]) || t[5].is_ascii_digit())
        && t[6].is_ascii_digit()
        && letter(t[7])
        && letter(t[8])
        && t[9].is_ascii_digit()
        && t[10].is_ascii_digit()
}

/// A plausible calendar date: month 1–12, day within the month (29
/// February allowed in any year: a scanner need not know leap years to
/// mask), year 1850–2100.
pub fn calendar(year: u32, month: u32, day: u32) -> bool {
    const DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1850..=2100).contains(&year) && (1..=12).contains(&month) && day >= 1 && day <= DAYS[month as usize - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_valid_and_rejects_one_digit_off() {
        assert!(luhn(b"4539578763621486"));
        assert!(!luhn(b"4539578763621487"));
        assert!(!luhn(b"45395787636214a6"));
        assert!(!luhn(b"0"));
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn(b"123456789"));
        for bad in [&b"000456789"[..], b"666456789", b"900456789", b"123006789", b"123450000", b"12345678"] {
            assert!(!ssn(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn vin_check_digit() {
        assert!(vin(b"1M8GDM9AXKP042788"));
        assert!(vin(b"11111111111111111"));
        assert!(!vin(b"1M8GDM9A1KP042788"));
        assert!(!vin(b"1M8GDM9AXKP04278O"), "O is not a VIN character");
        assert!(!vin(b"1M8GDM9AXKP04278"));
    }

    #[test]
    fn npi_check_digit() {
        assert!(npi(b"1234567893"));
        assert!(!npi(b"1234567894"));
        assert!(!npi(b"3234567893"));
    }

    #[test]
    fn dea_check_digit() {
        assert!(dea(b"AB1234563"));
        assert!(!dea(b"AB1234564"));
        assert!(!dea(b"A11234563"));
    }

    #[test]
    fn mbi_format() {
        assert!(mbi(b"1EG4TE5MK73"));
        assert!(!mbi(b"1SG4TE5MK73"), "S is excluded");
        assert!(!mbi(b"0EG4TE5MK73"));
        assert!(!mbi(b"1EG4TE5MK7"));
    }

    #[test]
    fn calendar_bounds() {
        assert!(calendar(1988, 2, 29));
        assert!(!calendar(1988, 2, 30));
        assert!(!calendar(1988, 13, 1));
        assert!(!calendar(1700, 1, 1));
    }
}
