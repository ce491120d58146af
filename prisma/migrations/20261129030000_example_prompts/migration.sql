-- An example's prompt text (issue 12): the decoded token ids its prompt_digest is over, so the
-- dashboard's cell page can show what the model read. Rows recorded before this migration have
-- only the digest: NULL. TOAST compresses long prompts out of line, so the bitmap-driven page
-- reads still touch only the rows of the page.
ALTER TABLE "example_results" ADD COLUMN "prompt" TEXT;
