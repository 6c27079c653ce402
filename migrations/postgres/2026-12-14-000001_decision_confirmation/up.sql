-- A go recorded while criteria were not met or unknown says that its decider confirmed it.
ALTER TABLE decisions ADD COLUMN unmet_confirmed BOOLEAN NOT NULL DEFAULT FALSE;
