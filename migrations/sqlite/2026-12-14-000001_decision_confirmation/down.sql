ALTER TABLE decisions DROP COLUMN unmet_confirmed;
