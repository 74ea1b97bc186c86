--
-- PostgreSQL database dump
--

\restrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: shop; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';


ALTER DATABASE shop OWNER TO postgres;

\unrestrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5
\connect shop
\restrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: DATABASE shop; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON DATABASE shop IS 'The shop.
ALTER DATABASE shop OWNER TO x;';


--
-- Name: shop; Type: DATABASE PROPERTIES; Schema: -; Owner: postgres
--

ALTER DATABASE shop SET work_mem TO '8MB';
ALTER DATABASE shop SET search_path TO 'public', '$user';
ALTER ROLE bob IN DATABASE shop SET work_mem TO '4MB';


\unrestrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5
\connect shop
\restrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f() RETURNS text
    LANGUAGE plpgsql
    AS $$
BEGIN
GRANT CONNECT ON DATABASE shop TO bob;
RETURN 'ALTER DATABASE shop SET x = 1;';
END
$$;


ALTER FUNCTION public.f() OWNER TO postgres;

--
-- Name: g(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.g() RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT 1;
 SELECT 2;
END;


ALTER FUNCTION public.g() OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: notes; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.notes (
    id integer NOT NULL,
    body text
);


ALTER TABLE public.notes OWNER TO postgres;

--
-- Name: TABLE notes; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE public.notes IS 'Notes.
COMMENT ON DATABASE shop IS ''not this'';
\connect other';


--
-- Name: v; Type: VIEW; Schema: public; Owner: postgres
--

CREATE VIEW public.v AS
 SELECT 'CREATE DATABASE shop'::text AS s,
    '
\connect shop
'::text AS t;


ALTER TABLE public.v OWNER TO postgres;

--
-- Data for Name: notes; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.notes (id, body) FROM stdin;
1	CREATE DATABASE shop;
2	line\n\\connect shop\nGRANT ALL ON DATABASE shop TO bob;
3	\\.x
4	ALTER DATABASE shop OWNER TO mallory;
5	\N
\.


--
-- Name: notes notes_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.notes
    ADD CONSTRAINT notes_pkey PRIMARY KEY (id);


--
-- Name: DATABASE shop; Type: ACL; Schema: -; Owner: postgres
--

REVOKE CONNECT,TEMPORARY ON DATABASE shop FROM PUBLIC;
GRANT CONNECT ON DATABASE shop TO PUBLIC;
GRANT CREATE,CONNECT ON DATABASE shop TO bob;


--
-- PostgreSQL database dump complete
--

\unrestrict OhCS7qCNDMaQBVBqrBG2oskfQG6t83i1QVC19gYf0eSqWb7AFMQjrIFct5HXDJ5

