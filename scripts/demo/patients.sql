-- The quickstart's demo table: 200 synthetic patients. Every value is
-- generated, none is real. Used by ./scripts/quickstart and the masking tests.
SET client_min_messages = warning;
DROP TABLE IF EXISTS patients;
CREATE TABLE patients (
  id serial PRIMARY KEY,
  mrn text NOT NULL,
  first_name text NOT NULL,
  last_name text NOT NULL,
  birth_date date NOT NULL,
  zip text NOT NULL,
  phone text NOT NULL,
  diagnosis text NOT NULL
);
-- Synthetic people: every value is generated, none is real.
INSERT INTO patients (mrn, first_name, last_name, birth_date, zip, phone, diagnosis)
SELECT 'MRN' || lpad((100000 + g)::text, 7, '0'),
       (ARRAY['Ava','Ben','Chloe','Dev','Elena','Farid','Grace','Hiro','Ines','Jon'])[1 + g % 10],
       (ARRAY['Okafor','Lindqvist','Moreau','Tanaka','Silva','Novak','Haddad','Quinn'])[1 + g % 8],
       DATE '1940-01-01' + (g * 97) % 25000,
       lpad(((g * 7919) % 99999)::text, 5, '0'),
       '555-' || lpad(((g * 31) % 10000)::text, 4, '0'),
       (ARRAY['hypertension','type 2 diabetes','asthma','migraine','fracture'])[1 + g % 5]
FROM generate_series(1, 200) AS g;
