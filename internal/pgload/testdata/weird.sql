--
-- PostgreSQL database dump
--

\restrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y

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
-- Name: Weird Name; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE "Weird Name" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';


ALTER DATABASE "Weird Name" OWNER TO postgres;

\unrestrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y
\encoding SQL_ASCII
\connect -reuse-previous=on "dbname='Weird Name'"
\restrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y

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
-- Name: DATABASE "Weird Name"; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON DATABASE "Weird Name" IS 'w';


--
-- Name: Weird Name; Type: DATABASE PROPERTIES; Schema: -; Owner: postgres
--

ALTER DATABASE "Weird Name" SET work_mem TO '8MB';


\unrestrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y
\encoding SQL_ASCII
\connect -reuse-previous=on "dbname='Weird Name'"
\restrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y

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
-- PostgreSQL database dump complete
--

\unrestrict wTKXlzBLGarRMGaW3bIIpvJ5RopRxiwgpfbKvVSeOKw8NFIdcmhJ7jy3ZCNfv9y

