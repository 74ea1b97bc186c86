--
-- PostgreSQL database dump (sample shipped with pgarchive's demo)
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET client_min_messages = warning;

CREATE DATABASE demo WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';

\connect demo

CREATE TABLE public.registrations (
    id integer NOT NULL,
    email text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

COPY public.registrations (id, email, created_at) FROM stdin;
1	ada@example.org	2026-11-01 09:00:00+00
2	grace@example.org	2026-11-02 10:30:00+00
3	edsger@example.org	2026-11-03 11:45:00+00
4	barbara@example.org	2026-11-04 08:15:00+00
5	donald@example.org	2026-11-05 16:20:00+00
\.

ALTER TABLE ONLY public.registrations
    ADD CONSTRAINT registrations_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
--

