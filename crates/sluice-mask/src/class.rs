//! The identifier classes: one per HIPAA Safe Harbor identifier type Sluice
//! recognises, named exactly as the phi-dev corpus names them.
//!
//! Owns: `PhiClass`, its names, and per-class counters (`ClassCounts`).

use std::fmt;
use std::str::FromStr;

/// A kind of protected health identifier (45 CFR 164.514(b)(2)(i)); the
/// letter of the Safe Harbor list each stands for is in its doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhiClass {
    /// (A) names of patients, relatives, providers.
    Name,
    /// (B) street address.
    Address,
    /// (B) city, town or county.
    City,
    /// (B) ZIP code.
    Zip,
    /// (C) any element of a date except the year.
    Date,
    /// (C) an age over 89.
    Age90Plus,
    /// (D) telephone number.
    Phone,
    /// (E) fax number.
    Fax,
    /// (F) email address.
    Email,
    /// (G) social security number.
    Ssn,
    /// (H) medical record number.
    Mrn,
    /// (I) health plan beneficiary number (including the Medicare MBI).
    HealthPlanId,
    /// (J) account number.
    Account,
    /// (K) certificate or licence number (driver's licence, NPI, DEA).
    License,
    /// (L) vehicle identifier: VIN, plate.
    VehicleId,
    /// (M) device identifier or serial number: serial, UDI, MAC, IMEI.
    DeviceId,
    /// (N) web URL.
    Url,
    /// (O) IP address, v4 or v6.
    IpAddress,
    /// (R) any other unique identifying number: study, employee, biobank,
    /// registry ids, and whatever the operator declares.
    OtherId,
    /// (P, Q) biometric identifiers and full-face images: no recogniser
    /// finds these in text; a column declared as such is dropped whole.
    Biometric,
}

impl PhiClass {
    /// How many classes there are.
    pub const COUNT: usize = 20;

    /// Every class, in declaration order (the index of `ClassCounts`).
    pub const ALL: [PhiClass; PhiClass::COUNT] = [
        PhiClass::Name,
        PhiClass::Address,
        PhiClass::City,
        PhiClass::Zip,
        PhiClass::Date,
        PhiClass::Age90Plus,
        PhiClass::Phone,
        PhiClass::Fax,
        PhiClass::Email,
        PhiClass::Ssn,
        PhiClass::Mrn,
        PhiClass::HealthPlanId,
        PhiClass::Account,
        PhiClass::License,
        PhiClass::VehicleId,
        PhiClass::DeviceId,
        PhiClass::Url,
        PhiClass::IpAddress,
        PhiClass::OtherId,
        PhiClass::Biometric,
    ];

    /// The corpus and placeholder name: `NAME`, `AGE_90PLUS`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PhiClass::Name => "NAME",
            PhiClass::Address => "ADDRESS",
            PhiClass::City => "CITY",
            PhiClass::Zip => "ZIP",
            PhiClass::Date => "DATE",
            PhiClass::Age90Plus => "AGE_90PLUS",
            PhiClass::Phone => "PHONE",
            PhiClass::Fax => "FAX",
            PhiClass::Email => "EMAIL",
            PhiClass::Ssn => "SSN",
            PhiClass::Mrn => "MRN",
            PhiClass::HealthPlanId => "HEALTH_PLAN_ID",
            PhiClass::Account => "ACCOUNT",
            PhiClass::License => "LICENSE",
            PhiClass::VehicleId => "VEHICLE_ID",
            PhiClass::DeviceId => "DEVICE_ID",
            PhiClass::Url => "URL",
            PhiClass::IpAddress => "IP_ADDRESS",
            PhiClass::OtherId => "OTHER_ID",
            PhiClass::Biometric => "BIOMETRIC",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for PhiClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class name that is not one of [`PhiClass::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown PHI class {0:?} (expected one of NAME, ADDRESS, CITY, ZIP, DATE, AGE_90PLUS, PHONE, FAX, EMAIL, SSN, MRN, HEALTH_PLAN_ID, ACCOUNT, LICENSE, VEHICLE_ID, DEVICE_ID, URL, IP_ADDRESS, OTHER_ID, BIOMETRIC)"
)]
pub struct UnknownClass(pub String);

impl FromStr for PhiClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhiClass::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownClass(s.to_string()))
    }
}

/// How many values of each class were masked. Counts only: never values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts([u64; PhiClass::COUNT]);

impl ClassCounts {
    pub fn add(&mut self, class: PhiClass) {
        self.0[class.index()] += 1;
    }

    pub fn get(&self, class: PhiClass) -> u64 {
        self.0[class.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds every count of `other` to this one.
    pub fn merge(&mut self, other: &ClassCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The classes with a non-zero count, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (PhiClass, u64)> + '_ {
        PhiClass::ALL.into_iter().map(|c| (c, self.get(c))).filter(|&(_, n)| n > 0)
    }
}
